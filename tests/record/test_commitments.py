"""Salted commitments: binding, hiding, and the exact bytes they hash."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from deconflict.record.canonical import MAX_SAFE_INTEGER, canonical_json
from deconflict.record.commitments import check_opening, commit, new_salt

SALT = "00" * 31 + "01"

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
salts = st.binary(min_size=32, max_size=32).map(bytes.hex)


def test_commitment_is_sha256_of_salt_then_canonical_json() -> None:
    value = {"b": [1.0, "é"], "a": None}
    expected = hashlib.sha256(bytes.fromhex(SALT) + '{"a":null,"b":[1,"é"]}'.encode()).hexdigest()
    assert commit(value, SALT) == expected


def test_new_salts_are_32_random_bytes() -> None:
    drawn = {new_salt() for _ in range(100)}
    assert len(drawn) == 100
    assert all(len(bytes.fromhex(salt)) == 32 for salt in drawn)


@pytest.mark.parametrize("salt", ["", "00" * 31, "00" * 33, "zz" * 32])
def test_salts_of_any_other_length_or_form_are_refused(salt: str) -> None:
    # A salt of variable length would let salt+"1" and salt'+"11" collide (no binding).
    with pytest.raises(ValueError):
        commit(1, salt)
    assert not check_opening(commit(1, SALT), 1, salt)


@given(json_values, salts)
def test_an_opening_opens_its_own_commitment(value: Any, salt: str) -> None:
    assert check_opening(commit(value, salt), value, salt)
    assert check_opening(commit(value, salt).upper(), value, salt)


@given(json_values, json_values, salts)
def test_binding_different_values_give_different_commitments(a: Any, b: Any, salt: str) -> None:
    # "Different" as JSON: 1 and 1.0 are the same JSON number and rightly share a commitment.
    assume(canonical_json(a) != canonical_json(b))
    assert commit(a, salt) != commit(b, salt)
    assert not check_opening(commit(a, salt), b, salt)


@given(json_values, salts, salts)
def test_hiding_the_same_value_under_another_salt_is_another_commitment(
    value: Any, salt: str, other: str
) -> None:
    assume(salt != other)
    assert commit(value, salt) != commit(value, other)
    assert not check_opening(commit(value, salt), value, other)


def test_key_order_and_whitespace_do_not_change_a_commitment() -> None:
    assert commit({"a": 1, "b": 2}, SALT) == commit({"b": 2, "a": 1}, SALT)


def test_malformed_openings_are_false_not_errors() -> None:
    assert not check_opening("not hex", 1, SALT)
    assert not check_opening(commit(1, SALT), float("nan"), SALT)
    assert not check_opening(commit(1, SALT), object(), SALT)
