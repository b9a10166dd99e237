import pytest

from pails.api import xml
from pails.errors import S3Error
from pails.service.buckets import validate_bucket_name


def test_escape_controls_and_markup() -> None:
    assert xml.escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&apos;"
    assert xml.escape("x\x01y\r") == "x&#x1;y&#13;"
    assert xml.escape("tab\tnl\n") == "tab\tnl\n"


def test_url_encoding_matches_s3() -> None:
    assert xml.url_encode("a b/c+d%é") == "a+b/c%2Bd%25%C3%A9"


def test_iso8601() -> None:
    assert xml.iso8601(0.5) == "1970-01-01T00:00:00.500Z"


@pytest.mark.parametrize(
    "body",
    [
        b"<not-closed>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b"",
    ],
)
def test_parse_rejects_malformed_and_entities(body: bytes) -> None:
    with pytest.raises(S3Error) as err:
        xml.parse(body)
    assert err.value.code == "MalformedXML"


@pytest.mark.parametrize("name", ["abc", "my-bucket.data", "a" * 63, "0-9"])
def test_valid_bucket_names(name: str) -> None:
    validate_bucket_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "Upper",
        "under_score",
        "-start",
        "end-",
        "a..b",
        "192.168.1.1",
        "xn--abc",
        "b-s3alias",
        "a b",
    ],
)
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(S3Error) as err:
        validate_bucket_name(name)
    assert err.value.code == "InvalidBucketName"


def test_http_date_matches_email_utils() -> None:
    from email.utils import formatdate

    from pails.api.httpdate import http_date

    for ts in (0.0, 951782400.5, 1795612464.0, 4102444799.0):
        assert http_date(ts) == formatdate(ts, usegmt=True)
