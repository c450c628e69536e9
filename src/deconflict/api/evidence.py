"""``GET /v1/declarations/{id}/evidence``: a declaration's evidence pack (API.md v1.1), as
JSON or, with ``?format=pdf``, as a printable report of the same content."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from deconflict.api.bodies import StrictRoute
from deconflict.api.declaration_json import declaration_json
from deconflict.api.deps import blocking, caller, deployment_of
from deconflict.record.evidence_check import FORMAT
from deconflict.service import evidence
from deconflict.service.parties import Party

router = APIRouter(prefix="/v1", tags=["declarations"], route_class=StrictRoute)


def evidence_json(pack: evidence.Evidence) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "declaration": declaration_json(pack.declaration),
        "versions": pack.versions,
        "notifications": pack.notifications,
        "tree_head": pack.tree_head,
        "public_key": pack.public_key,
        "generated_at": pack.generated_at,
    }


def _pdf(document: dict[str, Any]) -> bytes:
    # Imported here: reportlab is only loaded by the processes that render a report.
    from deconflict.record.evidence_report import render_pdf

    return render_pdf(document)


# The answer is JSON, or with ?format=pdf the report: both documented for clients and fuzzers.
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The evidence pack (JSON), or with `?format=pdf` the printable report",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get("/declarations/{declaration_id}/evidence", response_model=None, responses=_ANSWERS)
async def evidence_pack(
    declaration_id: str,
    request: Request,
    party: Party = Depends(caller),
    format: Literal["json", "pdf"] = "json",
) -> dict[str, Any] | Response:
    """Every version with its openings, every notification about the declaration with its
    delivery, acknowledgment, responses and comments, each entry's leaf and inclusion proof,
    one signed tree head covering them all, and the log's public key (owner and coordinator
    only); ``deconflict verify --evidence FILE --public-key KEY`` checks it offline."""
    found = await blocking(evidence.evidence_pack, deployment_of(request), party, declaration_id)
    document = evidence_json(found)
    if format == "json":
        return document
    pdf = await blocking(_pdf, document)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="evidence-{declaration_id}.pdf"'},
    )
