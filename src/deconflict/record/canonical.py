"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme).

Every record leaf and every commitment is computed over canonical JSON, so the same value
always gives the same bytes, on any machine and in any language with a JCS library:

- object keys sorted by their UTF-16 code units, no whitespace anywhere;
- strings with only the mandatory escapes (``"``, ``\\``, control characters), everything
  else kept as is and encoded as UTF-8 by the caller;
- numbers in the ECMAScript ``Number.prototype.toString`` form: ``1`` not ``1.0``, the
  shortest decimal that round-trips, exponent form below 1e-6 and from 1e21.

Values that JSON cannot carry exactly are refused with ``ValueError`` instead of being
silently changed: NaN and infinities, integers whose double does not print as the same
digits (a JCS number is a double, so 2**53 + 1 would come back as another number), lone
surrogates (no UTF-8 form). Types that are not JSON at all raise ``TypeError``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

# Integers beyond this are not exactly representable as an IEEE-754 double.
MAX_SAFE_INTEGER = 2**53 - 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical_json(value: Any) -> str:
    """The RFC 8785 canonical form of ``value`` (dict, list, tuple, str, int, float, bool, None)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    # bool before int: True is an int in Python but `true` in JSON.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, Mapping):
        _write_object(value, out)
    elif isinstance(value, list | tuple):
        _write_array(value, out)
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")


def _write_object(value: Mapping[Any, Any], out: list[str]) -> None:
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    # Comparing UTF-16BE bytes compares UTF-16 code units, which is the order RFC 8785 §3.2.3
    # prescribes; it differs from Python's code point order above U+FFFF.
    # (surrogatepass: a lone surrogate is refused with a clear error when the key is written.)
    keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
    out.append("{")
    for position, key in enumerate(keys):
        if position:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _write(value[key], out)
    out.append("}")


def _write_array(value: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    out.append("[")
    for position, item in enumerate(value):
        if position:
            out.append(",")
        _write(item, out)
    out.append("]")


def _string(text: str) -> str:
    if _SURROGATE.search(text):
        raise ValueError("string contains a lone surrogate, which has no UTF-8 form")
    # With ensure_ascii=False the json module escapes exactly what RFC 8785 §3.2.2.2 requires:
    # `"`, `\`, \b \f \n \r \t and other controls as lowercase \u00xx; nothing else.
    # ``encode_basestring`` is what ``json.dumps(text, ensure_ascii=False)`` calls for a
    # string, without building an encoder per call (every string of every entry comes here).
    return json.encoder.encode_basestring(text)


def _integer(number: int) -> str:
    if abs(number) <= MAX_SAFE_INTEGER:
        return str(number)
    # A JCS number is a double. A bigger integer is accepted only when the double nearest to it
    # prints as the integer's own digits (as 2**53 and 36170162691812870 do), so the text reads
    # back as the same integer; 2**53 + 1 or 10**21 would silently become another number.
    try:
        text = format_number(float(number))
    except OverflowError:
        text = ""
    if text != str(number):
        raise ValueError(f"integer {number} is not exactly representable as a JSON number")
    return text


def format_number(number: float) -> str:
    """A float as ECMAScript prints it (ECMA-262 Number::toString, RFC 8785 §3.2.2.3)."""
    if not math.isfinite(number):
        raise ValueError(f"{number} is not a JSON number")
    if number == 0:
        return "0"  # also for -0.0
    sign = "-" if number < 0 else ""
    digits, point = _shortest_digits(abs(number))
    return sign + _place_point(digits, point)


def _shortest_digits(number: float) -> tuple[str, int]:
    """Digits ``d`` and exponent ``n`` with number == 0.d * 10**n, ``d`` the shortest round trip.

    Python's repr is the shortest round-trip representation, like ECMAScript's; only the
    layout differs, so we take its digits and lay them out again.
    """
    mantissa, _, exponent = repr(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)
    leading_zeros = len(digits) - len(digits.lstrip("0"))
    return digits[leading_zeros:].rstrip("0"), point - leading_zeros


def _place_point(digits: str, point: int) -> str:
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    exponent = point - 1
    sign = "+" if exponent >= 0 else "-"
    mantissa = digits if count == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{sign}{abs(exponent)}"
