"""``GET /v1/export``: the declarations a party may see, as a file that imports back.

The declarations are exactly those ``GET /v1/declarations`` answers the caller (visible,
active; ``declaration_reads.list_declarations`` applies the visibility), written by
``importing.export_files``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deconflict.errors import InvalidRequest
from deconflict.importing.export_files import EXPORT_FORMATS, MEDIA_TYPES, export_file
from deconflict.service.declaration_reads import list_declarations
from deconflict.service.deployment import Deployment
from deconflict.service.parties import Party
from deconflict.storage.declarations import StoredDeclaration


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


def export_declarations(
    deployment: Deployment, party: Party, *, fmt: str, kind: str | None
) -> ExportFile:
    """The caller's visible declarations (of ``kind``, when given) as ``fmt``; 400 naming
    ``format`` or ``kind`` for a value there is none of."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidRequest(
            f"format must be one of {', '.join(EXPORT_FORMATS)}, not {fmt[:20]!r}",
            field="format",
        )
    found = list_declarations(deployment, party, bbox=None, start=None, end=None, kind=kind)
    content = export_file([_document(d) for d in found], fmt)
    day = deployment.now().strftime("%Y-%m-%d")
    extension = "csv" if fmt == "csv" else "geojson"
    filename = f"deconflict-{kind or 'declarations'}-{day}.{extension}"
    return ExportFile(content, MEDIA_TYPES[fmt], filename)


def _document(declaration: StoredDeclaration) -> dict[str, Any]:
    """What the writer reads of API.md's ``Declaration``."""
    return {
        "id": declaration.id,
        "kind": declaration.kind,
        "category": declaration.category,
        "metadata": declaration.metadata if isinstance(declaration.metadata, dict) else {},
        "volumes": declaration.volumes,
    }
