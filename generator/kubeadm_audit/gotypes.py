"""Go's value parsing as kube-apiserver's flags use it: strconv.ParseInt/ParseFloat/ParseBool
and time.ParseDuration, with Go's error messages and ranges.

Below both config (which checks AuditConfig values the way the flags will read them) and
flags (which validates flag values), so neither imports the other. Imports nothing of ours.
"""
from __future__ import annotations

import math
import re

#: Go's int64 and float32 limits, the types of kube-apiserver's numeric audit flags.
INT64_MAX = 2 ** 63 - 1
INT64_MIN = -(2 ** 63)
FLOAT32_MAX = 3.4028234663852886e38

_GO_INT = re.compile(r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO]?(?:_?[0-7])+|[1-9](?:_?[0-9])*|0)\Z")
#: Compiled on first use (re's cache): the KRM start-up path parses no floats or durations.
_GO_FLOAT = (
    r"[+-]?(?:(?:\d+(?:_\d+)*\.?(?:\d+(?:_\d+)*)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+)?"
    r"|0[xX][0-9a-fA-F_.]+[pP][+-]?\d+|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])\Z")
_GO_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_DURATION_NUMBER = r"([0-9]*)(\.?)([0-9]*)"
_DURATION_UNIT_TEXT = r"[^0-9.]*"


def parse_go_int(text: str, bits: int = 64) -> int:
    """strconv.ParseInt(text, 0, bits), as pflag's IntVar/Int64Var use it."""
    if not _GO_INT.match(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    if body[:2].lower() == "0x":
        value = int(body[2:], 16)
    elif body[:2].lower() == "0b":
        value = int(body[2:], 2)
    elif body[:2].lower() == "0o":
        value = int(body[2:], 8)
    elif len(body) > 1 and body.startswith("0"):
        value = int(body[1:], 8)
    else:
        value = int(body)
    value *= sign
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_go_duration(text: str) -> float:
    """time.ParseDuration, in seconds, with Go's error messages (and its int64 nanosecond range)."""
    return parse_go_duration_ns(text) / 1e9


_NS_PER_UNIT = {"ns": 1, "us": 10 ** 3, "µs": 10 ** 3, "μs": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9,
                "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def parse_go_duration_ns(text: str) -> int:
    """time.ParseDuration exactly: integer nanoseconds, refusing what overflows Go's int64."""
    invalid = ValueError(f'time: invalid duration "{text}"')
    negative = text[:1] == "-"
    rest = text[1:] if text[:1] in "+-" else text
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        number = _match(_DURATION_NUMBER, rest)
        if number in ("", "."):
            raise invalid
        rest = rest[len(number):]
        unit = _match(_DURATION_UNIT_TEXT, rest)
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _NS_PER_UNIT:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        rest = rest[len(unit):]
        whole, _, fraction = number.partition(".")
        value = int(whole or "0")
        if value > (1 << 63):  # leadingInt's overflow
            raise invalid
        per = _NS_PER_UNIT[unit]
        if value > (1 << 63) // per:
            raise invalid
        value *= per
        digits = fraction[:18]  # leadingFraction stops before its uint64 overflows
        if digits.strip("0"):
            value += int(float(int(digits)) * (per / 10 ** len(digits)))
            if value > (1 << 63):
                raise invalid
        total += value
        if total > (1 << 63):
            raise invalid
    if not negative and total > (1 << 63) - 1:
        raise invalid
    return -total if negative else total


def _match(pattern: str, text: str) -> str:
    """What ``pattern`` (which matches any text, perhaps emptily) takes from the start of ``text``."""
    found = re.match(pattern, text)
    return found.group(0) if found else ""


def parse_go_float32(text: str) -> float:
    """strconv.ParseFloat(text, 32), as pflag's Float32Var uses it."""
    if not re.match(_GO_FLOAT, text):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    value = float(text.replace("_", "")) if "x" not in text.lower() else float.fromhex(text)
    if math.isfinite(value) and abs(value) > FLOAT32_MAX:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range')
    return value


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool, as pflag's BoolVar uses it."""
    if text not in _GO_BOOL:
        raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return _GO_BOOL[text]
