"""Response sets StreamResponse's fields itself (a call less per request): it must set them all."""

from __future__ import annotations

from pails.api.http.response import Response, StreamResponse


def test_a_response_has_every_field_of_a_stream_response() -> None:
    assert set(vars(StreamResponse())) <= set(vars(Response()))
    assert vars(Response(status=204, headers={"a": "b"})) == {
        **vars(StreamResponse(status=204, headers={"a": "b"})),
        "body": b"",
    }
