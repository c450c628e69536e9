"""Canonical JSON (RFC 8785): the examples of the RFC, and the algebra as properties."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.record.canonical import MAX_SAFE_INTEGER, canonical_json, format_number

# RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript form.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), RFC_NUMBERS, ids=[b for b, _ in RFC_NUMBERS])
def test_numbers_as_in_rfc_8785_appendix_b(bits: str, expected: str) -> None:
    number = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert format_number(number) == expected
    assert canonical_json(number) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (1.0, "1"),
        (-7, "-7"),
        (0.5, "0.5"),
        (1e-7, "1e-7"),
        (123e18, "123000000000000000000"),
        (MAX_SAFE_INTEGER, "9007199254740991"),
        (2**53, "9007199254740992"),  # beyond the safe range but exactly a double
        (36170162691812870, "36170162691812870"),  # what 3.617016269181287e16 prints as
        (True, "true"),
        (False, "false"),
        (None, "null"),
    ],
)
def test_scalars(value: Any, expected: str) -> None:
    assert canonical_json(value) == expected


def test_rfc_8785_sorting_example() -> None:
    # §3.2.3: keys sort by UTF-16 code units, so U+1F600 (a surrogate pair) sorts before U+FB33.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonical_json(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc_8785_structure_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    assert canonical_json(value) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )


def test_strings_keep_non_ascii_and_escape_only_what_must_be() -> None:
    assert canonical_json("é\u2028\x7f/<") == '"é\u2028\x7f/<"'
    assert canonical_json("\b\f\n\r\t\x00\x1f") == '"\\b\\f\\n\\r\\t\\u0000\\u001f"'


def test_no_whitespace_and_tuples_are_arrays() -> None:
    assert canonical_json({"b": [1, (2, 3)], "a": {}}) == '{"a":{},"b":[1,[2,3]]}'


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        [math.nan],
        {"x": math.inf},
        2**53 + 1,
        -(2**60) - 1,
        2**70,
        10**400,
    ],
)
def test_values_json_cannot_carry_exactly_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}])
def test_lone_surrogates_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


@pytest.mark.parametrize("value", [{1: "a"}, {"a": {1, 2}}, b"bytes", object()])
def test_non_json_types_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json(value)


# --- properties ------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equality where 1 == 1.0 is expected (JSON has one number type) and -0.0 reads as 0."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


@given(json_values)
def test_round_trip_through_json_loads_gives_the_value(value: Any) -> None:
    assert same(json.loads(canonical_json(value)), value)


@given(json_values)
def test_canonicalising_is_idempotent(value: Any) -> None:
    once = canonical_json(value)
    assert canonical_json(json.loads(once)) == once


@given(st.dictionaries(text, json_values, max_size=8), st.randoms())
def test_key_order_does_not_matter(value: dict[str, Any], rng: Any) -> None:
    items = list(value.items())
    rng.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_exactly(number: float) -> None:
    assert float(canonical_json(number)) == number


@given(st.dictionaries(text, st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | text, max_size=8))
def test_flat_objects_match_sorted_compact_json(value: dict[str, Any]) -> None:
    # Without numbers that need ECMAScript layout or keys beyond the BMP, JCS is exactly
    # "sorted keys, no whitespace, UTF-8": what API.md promises for the record's leaves.
    if all(max(map(ord, key), default=0) < 0xD800 for key in value):
        compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        assert canonical_json(value) == compact
