"""cluster_auth: the HMAC signature of gateway -> node requests (pure)."""

from __future__ import annotations

import pytest

from pails.data import cluster_auth as ca

SECRET = b"s3cret-of-the-cluster"
NOW = 1_800_000_000.0


def signed(method: str = "PUT", target: str = "/chunks/" + "ab" * 16, **headers: str) -> dict[str, str]:
    base = {"Content-Length": "5", ca.CRC_HEADER: "3610a686"}
    base.update(headers)
    return ca.sign_headers(SECRET, method, target, base, now=NOW)


def test_round_trip() -> None:
    h = signed()
    ca.verify_request(SECRET, "PUT", "/chunks/" + "ab" * 16, h, now=NOW + 10)
    # header names in any case, as a server hands them over
    ca.verify_request(SECRET, "PUT", "/chunks/" + "ab" * 16, {k.upper(): v for k, v in h.items()}, now=NOW)


@pytest.mark.parametrize(
    ("method", "target", "change"),
    [
        ("GET", "/chunks/" + "ab" * 16, {}),  # another method
        ("PUT", "/chunks/" + "cd" * 16, {}),  # another chunk
        ("PUT", "/chunks/" + "ab" * 16 + "?x=1", {}),  # another query
        ("PUT", "/chunks/" + "ab" * 16, {"content-length": "6"}),
        ("PUT", "/chunks/" + "ab" * 16, {ca.CRC_HEADER: "00000000"}),
        ("PUT", "/chunks/" + "ab" * 16, {ca.NONCE_HEADER: "f" * 32}),
        ("PUT", "/chunks/" + "ab" * 16, {ca.DATE_HEADER: str(int(NOW) + 1)}),
    ],
)
def test_any_change_breaks_the_signature(method: str, target: str, change: dict[str, str]) -> None:
    h = {k.lower(): v for k, v in signed().items()}
    h.update(change)
    with pytest.raises(ca.AuthError, match="signature"):
        ca.verify_request(SECRET, method, target, h, now=NOW)


def test_wrong_secret_and_missing_headers() -> None:
    target = "/chunks/" + "ab" * 16
    with pytest.raises(ca.AuthError, match="signature"):
        ca.verify_request(b"other", "PUT", target, signed(), now=NOW)
    for drop in (ca.AUTH_HEADER, ca.DATE_HEADER, ca.NONCE_HEADER):
        h = {k: v for k, v in signed().items() if k != drop}
        with pytest.raises(ca.AuthError):
            ca.verify_request(SECRET, "PUT", target, h, now=NOW)
    h = signed()
    h[ca.AUTH_HEADER] = "AWS4-HMAC-SHA256 " + h[ca.AUTH_HEADER].split()[1]
    with pytest.raises(ca.AuthError, match="malformed"):
        ca.verify_request(SECRET, "PUT", target, h, now=NOW)


def test_clock_skew_window() -> None:
    target = "/chunks/" + "ab" * 16
    ca.verify_request(SECRET, "PUT", target, signed(), now=NOW + ca.MAX_SKEW_SECONDS)
    ca.verify_request(SECRET, "PUT", target, signed(), now=NOW - ca.MAX_SKEW_SECONDS)
    for t in (NOW + ca.MAX_SKEW_SECONDS + 1, NOW - ca.MAX_SKEW_SECONDS - 1):
        with pytest.raises(ca.AuthError, match="skew"):
            ca.verify_request(SECRET, "PUT", target, signed(), now=t)


def test_empty_body_lengths_sign_alike() -> None:
    h = ca.sign_headers(SECRET, "POST", "/chunks/" + "ab" * 16 + "/verify", now=NOW)
    h["Content-Length"] = "0"  # what an HTTP client adds to an empty POST
    ca.verify_request(SECRET, "POST", "/chunks/" + "ab" * 16 + "/verify", h, now=NOW)


def test_replay_guard() -> None:
    guard = ca.ReplayGuard(window=600, max_entries=3)
    target = "/chunks/" + "ab" * 16
    h = signed()
    ca.verify_request(SECRET, "PUT", target, h, now=NOW, replay=guard)
    with pytest.raises(ca.AuthError, match="replayed"):
        ca.verify_request(SECRET, "PUT", target, h, now=NOW + 1, replay=guard)
    assert guard.check_and_add("a" * 32, NOW)
    assert not guard.check_and_add("a" * 32, NOW + 599)
    assert guard.check_and_add("a" * 32, NOW + 1000)  # forgotten after the window
    for i in range(5):  # bounded: the oldest are forgotten
        guard.check_and_add(f"{i:032x}", NOW + 1001)
    assert len(guard._seen) <= 3


def test_secret_from_env() -> None:
    assert ca.secret_from_env({ca.SECRET_ENV: "xyz"}) == b"xyz"
    with pytest.raises(ca.AuthError, match="PAILS_CLUSTER_SECRET"):
        ca.secret_from_env({})
    with pytest.raises(ca.AuthError):
        ca.secret_from_env({ca.SECRET_ENV: ""})
