"""The JSON of a declaration answers the service's fields as they are: the read-back
(``service/readback.py``) proves that those fields serialise, so it proves the answer."""

from __future__ import annotations

import dataclasses

import pytest

from deconflict.api.declaration_json import declaration_json
from deconflict.storage.declarations import StoredDeclaration


def stored(kind: str, restricts: dict[str, list[str]] | None) -> StoredDeclaration:
    return StoredDeclaration(
        id="dcl_1",
        kind=kind,
        owner="pty_1",
        version="v1",
        state="active",
        volumes=[{"geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}],
        category="c",
        metadata={"a": [1, 2.5]},
        late_notice=False,
        restricts=restricts,
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-02T00:00:00.000000Z",
        justification="j",
    )


@pytest.mark.parametrize(
    "declaration",
    [
        pytest.param(stored("site", None), id="site"),
        pytest.param(stored("restriction", {"parties": [], "roles": ["operator"]}), id="zone"),
    ],
)
def test_the_answer_is_the_fields_unchanged(declaration: StoredDeclaration) -> None:
    document = declaration_json(declaration)
    names = {f.name for f in dataclasses.fields(declaration)}
    assert set(document) <= names
    for name, value in document.items():
        assert value is getattr(declaration, name), name
    # Only a field that is None is left out, and only restricts (API.md: restrictions only).
    assert names - set(document) == ({"restricts"} if declaration.restricts is None else set())


def test_api_md_order() -> None:
    assert list(declaration_json(stored("restriction", {}))) == [
        "id",
        "kind",
        "owner",
        "version",
        "state",
        "volumes",
        "position",
        "category",
        "metadata",
        "late_notice",
        "justification",
        "restricts",
        "created_at",
        "updated_at",
    ]
