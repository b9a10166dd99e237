"""Browser-based uploads (S3 POST Object): the signed POST policy and its conditions. Pure.

A policy is base64 JSON: {"expiration": ISO-8601, "conditions": [...]}; a condition is
{"field": "value"} (exact match), ["eq", "$field", "value"], ["starts-with", "$field", "prefix"]
or ["content-length-range", min, max]. Every form field except policy, x-amz-signature, file and
x-ignore-* must be named by a condition (S3: "Extra input fields").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pails.iam.sigv4 import derive_signing_key, sign_string

_EXEMPT = frozenset({"policy", "x-amz-signature", "file", "signature", "awsaccesskeyid"})


class PolicyViolation(ValueError):
    """The form does not satisfy the policy (S3: 403 AccessDenied "Invalid according to Policy")."""


class MalformedPostPolicy(ValueError):
    """The policy document cannot be read (S3: 400 InvalidPolicyDocument)."""


@dataclass(frozen=True, slots=True)
class PostCondition:
    op: str  # "eq", "starts-with" or "content-length-range"
    field: str  # lower-case form field name without "$"
    value: str = ""
    low: int = 0
    high: int = 0
    text: str = ""  # the condition as written, for error messages


@dataclass(frozen=True, slots=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[PostCondition, ...]

    @property
    def length_range(self) -> tuple[int, int] | None:
        for cond in self.conditions:
            if cond.op == "content-length-range":
                return cond.low, cond.high
        return None


def _date(text: Any) -> datetime:
    if not isinstance(text, str):
        raise MalformedPostPolicy("Invalid Policy: Invalid 'expiration' value.")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPostPolicy(f"Invalid Policy: Invalid 'expiration' value: '{text}'.") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_post_policy(encoded: str) -> PostPolicy:
    try:
        raw = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedPostPolicy("Invalid Policy: Invalid JSON.") from None
    if not isinstance(raw, dict) or "expiration" not in raw:
        raise MalformedPostPolicy("Invalid Policy: Policy missing expiration.")
    conditions_raw = raw.get("conditions")
    if not isinstance(conditions_raw, list):
        raise MalformedPostPolicy("Invalid Policy: Policy missing conditions.")
    conditions: list[PostCondition] = []
    for item in conditions_raw:
        text = json.dumps(item)
        if isinstance(item, dict):
            if len(item) != 1:
                raise MalformedPostPolicy(f"Invalid Policy: Invalid Simple-Condition: {text}")
            ((name, value),) = item.items()
            if not isinstance(value, str):
                raise MalformedPostPolicy(f"Invalid Policy: Invalid Simple-Condition: {text}")
            conditions.append(PostCondition("eq", name.lower(), value, text=text))
        elif isinstance(item, list) and item and isinstance(item[0], str):
            op = item[0].lower()
            if op == "content-length-range":
                if len(item) != 3:
                    raise MalformedPostPolicy(f"Invalid Policy: Invalid content-length-range: {text}")
                try:
                    low, high = int(item[1]), int(item[2])
                except (TypeError, ValueError):
                    raise MalformedPostPolicy(
                        f"Invalid Policy: Invalid content-length-range: {text}"
                    ) from None
                conditions.append(PostCondition(op, "", low=low, high=high, text=text))
            elif op in ("eq", "starts-with"):
                if len(item) != 3 or not isinstance(item[1], str) or not isinstance(item[2], str):
                    raise MalformedPostPolicy(f"Invalid Policy: Invalid {op} condition: {text}")
                if not item[1].startswith("$"):
                    raise MalformedPostPolicy(f"Invalid Policy: field names must start with '$': {text}")
                conditions.append(PostCondition(op, item[1][1:].lower(), item[2], text=text))
            else:
                raise MalformedPostPolicy(f"Invalid Policy: Invalid condition operator: {text}")
        else:
            raise MalformedPostPolicy(f"Invalid Policy: Invalid condition: {text}")
    return PostPolicy(_date(raw["expiration"]), tuple(conditions))


def check_fields(policy: PostPolicy, fields: Mapping[str, str], now: datetime) -> None:
    """`fields`: the form's fields, names lower-case, with "bucket" set to the target bucket and
    "key" already holding the ${filename} substitution."""
    if now >= policy.expiration:
        raise PolicyViolation("Invalid according to Policy: Policy expired.")
    named: set[str] = {"bucket"}
    for cond in policy.conditions:
        if cond.op == "content-length-range":
            continue
        named.add(cond.field)
        actual = fields.get(cond.field)
        if cond.field == "content-type" and cond.op == "starts-with" and actual is not None:
            ok = all(part.strip().startswith(cond.value) for part in actual.split(","))
        elif cond.op == "eq":
            ok = actual == cond.value
        else:
            ok = actual is not None and actual.startswith(cond.value)
        if not ok:
            raise PolicyViolation(f"Invalid according to Policy: Policy Condition failed: {cond.text}")
    extra = sorted(
        name
        for name in fields
        if name not in named and name not in _EXEMPT and not name.startswith("x-ignore-")
    )
    if extra:
        raise PolicyViolation(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def verify_v4_signature(encoded_policy: str, signature: str, secret_key: str, credential: str) -> bool:
    """x-amz-signature = hex HMAC-SHA256(signing key of the credential's scope, the base64 policy)."""
    parts = credential.split("/")
    if len(parts) != 5:
        return False
    _, date, region, service, _ = parts
    key = derive_signing_key(secret_key, date, region, service)
    return hmac.compare_digest(sign_string(key, encoded_policy), signature.strip().lower())
