"""Identifiers in AWS's shapes: account ids, canonical ids, unique ids and access key ids."""

from __future__ import annotations

import re
import secrets
import string

_UPPER_ALNUM = string.ascii_uppercase + string.digits
# AWS prefixes: AIDA user, AGPA group, AROA role, AKIA long-term key, ASIA temporary key.
USER_PREFIX, GROUP_PREFIX, ROLE_PREFIX = "AIDA", "AGPA", "AROA"
KEY_PREFIX, TEMP_KEY_PREFIX = "AKIA", "ASIA"

_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_ROLE_SESSION = re.compile(r"[\w+=,.@-]{2,64}")
_PATH = re.compile(r"/|/[\x21-\x7e]*/")
ACCOUNT_ID = re.compile(r"\d{12}")


def _random(length: int) -> str:
    return "".join(secrets.choice(_UPPER_ALNUM) for _ in range(length))


def account_id() -> str:
    """12 digits, never starting with 0 (000000000000 is the admin account)."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def canonical_id() -> str:
    return secrets.token_hex(32)


def unique_id(prefix: str) -> str:
    return prefix + _random(17)


def access_key_id(temporary: bool = False) -> str:
    return (TEMP_KEY_PREFIX if temporary else KEY_PREFIX) + _random(16)


def secret_access_key() -> str:
    """40 characters from the base64 alphabet, like AWS's."""
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def valid_name(name: str) -> bool:
    """User, group, role and policy names: 1..64 of letters, digits and +=,.@_-."""
    return _NAME.fullmatch(name) is not None


def valid_role_session_name(name: str) -> bool:
    return _ROLE_SESSION.fullmatch(name) is not None


def valid_path(path: str) -> bool:
    return len(path) <= 512 and _PATH.fullmatch(path) is not None
