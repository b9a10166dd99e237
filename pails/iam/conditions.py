"""Wildcards, policy variables and condition operators of the AWS policy language (pure, no I/O).

Written from the AWS IAM user guide ("IAM JSON policy elements: Condition operators", "Policy
variables"). See docs/decisions/0011-policy-evaluation.md for the semantics and the deviations.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal

# Looks up a condition key (case-insensitively) in the request; None when the key is absent.
Lookup = Callable[[str], tuple[str, ...] | None]


class Unresolved(Exception):
    """A policy variable has no (single) value in the request and no default: AWS then treats the
    whole statement as not matching."""


# --------------------------------------------------------------------------- patterns

# A token is ("lit", text, None), ("*", "", None), ("?", "", None) or ("var", key, default).
Token = tuple[str, str, str | None]
# After substitution: ("lit", text) / ("*", "") / ("?", "").
Part = tuple[str, str]

_VAR = re.compile(r"\s*([A-Za-z0-9_.:/+=@-]+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?")


@lru_cache(maxsize=8192)
def tokenize(pattern: str, variables: bool) -> tuple[Token, ...]:
    """Split a pattern into literals, wildcards and (when `variables`) `${...}` references.

    `${*}`, `${?}` and `${$}` are the literal characters. A `${` that does not open a well-formed
    variable is kept as literal text."""
    out: list[Token] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(("lit", "".join(buf), None))
            buf.clear()

    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if variables and ch == "$" and pattern.startswith("${", i):
            end = pattern.find("}", i + 2)
            if end != -1:
                inner = pattern[i + 2 : end]
                if inner in ("*", "?", "$"):
                    buf.append(inner)
                    i = end + 1
                    continue
                m = _VAR.fullmatch(inner)
                if m is not None:
                    flush()
                    default = m.group(2)
                    out.append(("var", m.group(1), None if default is None else default.replace("''", "'")))
                    i = end + 1
                    continue
        if ch in "*?":
            flush()
            out.append((ch, "", None))
        else:
            buf.append(ch)
        i += 1
    flush()
    return tuple(out)


def has_variables(pattern: str) -> bool:
    return any(kind == "var" for kind, _, _ in tokenize(pattern, True))


def substitute(tokens: tuple[Token, ...], lookup: Lookup | None) -> tuple[Part, ...]:
    """Replace variables by their (literal) values; raise Unresolved when one has none."""
    parts: list[Part] = []
    for kind, text, default in tokens:
        if kind != "var":
            parts.append((kind, text))
            continue
        values = lookup(text) if lookup is not None else None
        if values is not None and len(values) == 1:
            parts.append(("lit", values[0]))
        elif default is not None:
            parts.append(("lit", default))
        else:
            raise Unresolved(text)
    return tuple(parts)


def as_text(parts: tuple[Part, ...]) -> str:
    """The parts as a plain string (wildcards are literal characters in Equals operators)."""
    return "".join(text if kind == "lit" else kind for kind, text in parts)


def _piece(kind: str, text: str, in_segment: bool) -> str:
    if kind == "lit":
        return re.escape(text)
    if kind == "*":
        return "[^:]*" if in_segment else ".*"
    return "[^:]" if in_segment else "."


@lru_cache(maxsize=8192)
def glob_regex(parts: tuple[Part, ...], arn: bool = False, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile a wildcard pattern (`*` any run, `?` one character) to an anchored regex.

    With `arn`, a pattern of six colon-separated components is matched component by component (a
    wildcard never crosses ':' in the first five; in the resource part it crosses '/' and ':'), as
    ArnLike and the Resource element do. Patterns with fewer components are matched whole."""
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    if arn:
        segments: list[list[Part]] = [[]]
        for kind, text in parts:
            if kind != "lit" or len(segments) == 6:
                segments[-1].append((kind, text))
                continue
            pieces = text.split(":", 6 - len(segments))
            segments[-1].append(("lit", pieces[0]))
            for extra in pieces[1:]:
                segments.append([("lit", extra)])
        if len(segments) == 6:
            body = ":".join(
                "".join(_piece(kind, text, index < 5) for kind, text in segment)
                for index, segment in enumerate(segments)
            )
            return re.compile(body, flags)
    return re.compile("".join(_piece(kind, text, False) for kind, text in parts), flags)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Wildcard match without variables (Action, NotAction)."""
    return (
        glob_regex(substitute(tokenize(pattern, False), None), False, ignore_case).fullmatch(value)
        is not None
    )


# --------------------------------------------------------------------------- operators

Family = Literal["string", "numeric", "date", "bool", "binary", "ip", "arn", "null"]
Test = Literal["eq", "eq_ci", "like", "lt", "le", "gt", "ge", "in", "null"]
Qualifier = Literal["ForAnyValue", "ForAllValues"]


@dataclass(frozen=True)
class OperatorSpec:
    name: str  # canonical base name, e.g. "StringNotLike"
    family: Family
    test: Test
    negated: bool
    qualifier: Qualifier | None = None
    if_exists: bool = False

    @property
    def variables(self) -> bool:
        """Policy variables are substituted in the values of string and ARN operators only."""
        return self.family in ("string", "arn")


_BASES: dict[str, tuple[Family, Test, bool]] = {
    "StringEquals": ("string", "eq", False),
    "StringNotEquals": ("string", "eq", True),
    "StringEqualsIgnoreCase": ("string", "eq_ci", False),
    "StringNotEqualsIgnoreCase": ("string", "eq_ci", True),
    "StringLike": ("string", "like", False),
    "StringNotLike": ("string", "like", True),
    "NumericEquals": ("numeric", "eq", False),
    "NumericNotEquals": ("numeric", "eq", True),
    "NumericLessThan": ("numeric", "lt", False),
    "NumericLessThanEquals": ("numeric", "le", False),
    "NumericGreaterThan": ("numeric", "gt", False),
    "NumericGreaterThanEquals": ("numeric", "ge", False),
    "DateEquals": ("date", "eq", False),
    "DateNotEquals": ("date", "eq", True),
    "DateLessThan": ("date", "lt", False),
    "DateLessThanEquals": ("date", "le", False),
    "DateGreaterThan": ("date", "gt", False),
    "DateGreaterThanEquals": ("date", "ge", False),
    "Bool": ("bool", "eq", False),
    "BinaryEquals": ("binary", "eq", False),
    "IpAddress": ("ip", "in", False),
    "NotIpAddress": ("ip", "in", True),
    "ArnEquals": ("arn", "like", False),
    "ArnLike": ("arn", "like", False),
    "ArnNotEquals": ("arn", "like", True),
    "ArnNotLike": ("arn", "like", True),
    "Null": ("null", "null", False),
}
_BASES_LOWER = {name.lower(): name for name in _BASES}
OPERATOR_NAMES: tuple[str, ...] = tuple(_BASES)


class UnknownOperator(ValueError):
    pass


@lru_cache(maxsize=512)
def parse_operator(text: str) -> OperatorSpec:
    """`[ForAnyValue:|ForAllValues:]<Operator>[IfExists]`, names matched case-insensitively."""
    rest = text
    qualifier: Qualifier | None = None
    head, sep, tail = text.partition(":")
    if sep:
        if head.lower() == "foranyvalue":
            qualifier = "ForAnyValue"
        elif head.lower() == "forallvalues":
            qualifier = "ForAllValues"
        else:
            raise UnknownOperator(f"unknown set operator {head!r} in {text!r} (ForAnyValue or ForAllValues)")
        rest = tail
    if_exists = False
    if rest.lower().endswith("ifexists") and rest.lower() != "ifexists":
        if_exists = True
        rest = rest[: -len("ifexists")]
    name = _BASES_LOWER.get(rest.lower())
    if name is None:
        raise UnknownOperator(f"unknown condition operator {text!r}")
    family, test, negated = _BASES[name]
    if family == "null" and (if_exists or qualifier is not None):
        raise UnknownOperator(f"condition operator {text!r}: Null takes no IfExists or set operator")
    return OperatorSpec(name, family, test, negated, qualifier, if_exists)


# --------------------------------------------------------------------------- value parsing


def parse_number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")


def parse_date(text: str) -> datetime | None:
    """ISO 8601 (date, or date and time; naive means UTC) or epoch seconds."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def validate_value(spec: OperatorSpec, value: str) -> str | None:
    """An error message when `value` cannot be a policy value of this operator, else None."""
    if spec.family == "numeric" and parse_number(value) is None:
        return f"{spec.name}: {value!r} is not a number"
    if spec.family == "date" and parse_date(value) is None:
        return f"{spec.name}: {value!r} is not an ISO 8601 date or epoch seconds"
    if spec.family in ("bool", "null") and value.lower() not in ("true", "false"):
        return f"{spec.name}: {value!r} is not true or false"
    if spec.family == "ip" and parse_network(value) is None:
        return f"{spec.name}: {value!r} is not an IP address or CIDR block"
    return None


# --------------------------------------------------------------------------- evaluation

Matcher = Callable[[str], bool]


def _compare(test: Test, left: Decimal | datetime, right: Decimal | datetime) -> bool:
    if test == "eq":
        return left == right
    if test == "lt":
        return left < right  # type: ignore[operator]
    if test == "le":
        return left <= right  # type: ignore[operator]
    if test == "gt":
        return left > right  # type: ignore[operator]
    return left >= right  # type: ignore[operator]


def _matcher(spec: OperatorSpec, value: str, lookup: Lookup | None) -> Matcher:
    """A predicate over one request value for one policy value (the positive form)."""
    if spec.family in ("string", "arn"):
        parts = substitute(tokenize(value, lookup is not None), lookup)
        if spec.test == "eq":
            text = as_text(parts)
            return lambda c: c == text
        if spec.test == "eq_ci":
            folded = as_text(parts).casefold()
            return lambda c: c.casefold() == folded
        regex = glob_regex(parts, spec.family == "arn")
        return lambda c: regex.fullmatch(c) is not None
    if spec.family == "numeric":
        number = parse_number(value)

        def numeric(c: str) -> bool:
            left = parse_number(c)
            return left is not None and number is not None and _compare(spec.test, left, number)

        return numeric
    if spec.family == "date":
        when = parse_date(value)

        def date(c: str) -> bool:
            left = parse_date(c)
            return left is not None and when is not None and _compare(spec.test, left, when)

        return date
    if spec.family == "bool":
        wanted = value.lower()
        return lambda c: c.strip().lower() == wanted
    if spec.family == "ip":
        network = parse_network(value)

        def ip(c: str) -> bool:
            if network is None:
                return False
            address = _address(c)
            if address is None:
                return False
            if address in network:
                return True
            mapped = getattr(address, "ipv4_mapped", None)
            return mapped is not None and mapped in network

        return ip
    return lambda c: c == value  # binary: base64 text compared exactly


def evaluate_condition(
    operator: str, key: str, values: tuple[str, ...], lookup: Lookup, variables: bool
) -> bool:
    """One (operator, key, values) test of a Condition block.

    - Several policy values are ORed for positive operators; a negated operator is the negation of
      the positive one, so it holds only when *no* value matches (AWS: "NOR").
    - Key absent from the request: false, except true for negated operators, for ...IfExists and
      for ForAllValues; ForAnyValue is false. Null tests presence itself.
    - Without a set operator a multi-valued key matches when any of its values matches.
    - `variables` (policy Version 2012-10-17) enables `${...}` in string and ARN values; a variable
      without a value raises Unresolved.
    """
    return compile_condition(operator, key, values, variables)(lookup)


def _no_lookup(key: str) -> tuple[str, ...] | None:
    return None


@lru_cache(maxsize=8192)
def compile_condition(
    operator: str, key: str, values: tuple[str, ...], variables: bool
) -> Callable[[Lookup], bool]:
    """evaluate_condition's test with the policy values parsed once (values that hold a policy
    variable are substituted at each evaluation)."""
    spec = parse_operator(operator)
    substituting = variables and spec.variables
    fixed: list[Matcher] | None = None
    if not (substituting and any(has_variables(v) for v in values)):
        # Without variables a lookup is never called, but it still selects how `${...}` is read.
        fixed = [_matcher(spec, v, _no_lookup if substituting else None) for v in values]

    def test(lookup: Lookup) -> bool:
        present = lookup(key)
        if present is not None and not present:
            present = None if spec.qualifier != "ForAllValues" else present
        if spec.family == "null":
            absent = present is None
            return any((v.lower() == "true") == absent for v in values)
        if present is None:
            if spec.qualifier == "ForAllValues":
                return True
            if spec.qualifier == "ForAnyValue":
                return spec.if_exists
            return spec.if_exists or spec.negated
        matchers = fixed if fixed is not None else [_matcher(spec, v, lookup) for v in values]

        def satisfied(c: str) -> bool:
            hit = any(m(c) for m in matchers)
            return not hit if spec.negated else hit

        if spec.qualifier == "ForAllValues":
            return all(satisfied(c) for c in present)
        if spec.qualifier == "ForAnyValue":
            return any(satisfied(c) for c in present)
        for c in present:
            for m in matchers:
                if m(c):
                    return not spec.negated
        return spec.negated

    return test
