"""An evidence pack as a printable report (``GET /v1/declarations/{id}/evidence?format=pdf``).

The same content as the JSON pack, for an inquiry to read: the declaration and its versions,
its position read back, the notifications and their answers, the signed tree head, the log's
public key and its fingerprint, and how to verify. The report proves nothing by itself: the
JSON pack does, with ``deconflict verify --evidence`` (the report says so). Built with
reportlab's platypus, from the pack's JSON only.

Names and comments may be in any script. A TrueType font with Arabic glyphs is registered
when one is installed (DejaVu Sans, Noto); reportlab does not shape Arabic (joining forms,
right-to-left order), and no shaping library (arabic-reshaper, python-bidi) is a dependency,
so Arabic text prints as isolated letters in logical order: legible to a reader, not
typeset. Without such a font, characters the built-in font cannot show become "?", never an
exception. Hashes and keys are set in Courier, a built-in font whose text stays searchable.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from shapely.geometry import shape

from deconflict.geo.coords import readback

# Fonts with Arabic (and Latin, Cyrillic, Greek) glyphs, where Debian and others put them.
UNICODE_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
    Path("/usr/share/fonts/noto/NotoSans-Regular.ttf"),
)
UNICODE_FONT = "DeconflictUnicode"
MONO = "Courier"


def render_pdf(pack: dict[str, Any], *, font: str | None = None) -> bytes:
    """The report of ``pack`` (the JSON of ``GET /v1/declarations/{id}/evidence``), as PDF;
    ``font``: a registered font to use instead of the Unicode one (tests: the fallback)."""
    report = _Report(font or _font())
    out = io.BytesIO()
    declaration = pack.get("declaration") or {}
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Evidence pack of declaration {declaration.get('id')}",
        author="deconflict",
        subject=f"root {(pack.get('tree_head') or {}).get('root')}",
    )
    document.build(report.story(pack))
    return out.getvalue()


def _font() -> str:
    """The registered Unicode font's name, or Helvetica when none is installed."""
    if UNICODE_FONT in pdfmetrics.getRegisteredFontNames():
        return UNICODE_FONT
    for path in UNICODE_FONTS:
        if path.is_file():
            pdfmetrics.registerFont(TTFont(UNICODE_FONT, str(path)))
            return UNICODE_FONT
    return "Helvetica"


class _Report:
    def __init__(self, font: str) -> None:
        self.font = font
        styles = getSampleStyleSheet()
        self.title = ParagraphStyle("title", styles["Title"], fontName=font)
        self.heading = ParagraphStyle("heading", styles["Heading2"], fontName=font)
        self.body = ParagraphStyle("body", styles["BodyText"], fontName=font, fontSize=9)
        self.small = ParagraphStyle("small", self.body, fontSize=7.5, leading=9)
        self.mono = ParagraphStyle("mono", self.body, fontName=MONO, fontSize=7.5, leading=9)

    def text(self, value: Any, style: ParagraphStyle | None = None) -> Paragraph:
        shown = "" if value is None else str(value)
        if self.font == "Helvetica":
            # The built-in font has Latin-1 glyphs only.
            shown = shown.encode("latin-1", "replace").decode("latin-1")
        return Paragraph(escape(shown), style or self.body)

    def code(self, value: Any) -> Paragraph:
        # Hex and base64 only (ASCII), in Courier, so the text is searchable as it is.
        return Paragraph(escape("" if value is None else str(value)), self.mono)

    def story(self, pack: dict[str, Any]) -> list[Any]:
        declaration = pack.get("declaration") or {}
        head = pack.get("tree_head") or {}
        key = pack.get("public_key") or {}
        flow: list[Any] = [
            self.text(f"Evidence pack: declaration {declaration.get('id')}", self.title),
            self.text(
                f"Generated {pack.get('generated_at')} ({pack.get('format')}). This report "
                "shows the pack; the JSON pack is what proves it (see How to verify).",
                self.small,
            ),
            self.text("The declaration", self.heading),
            self.pairs(
                [
                    ("kind", self.text(declaration.get("kind"))),
                    ("owner", self.text(declaration.get("owner"))),
                    ("category", self.text(declaration.get("category"))),
                    ("name", self.text(_name(declaration))),
                    ("state", self.text(declaration.get("state"))),
                    ("current version", self.code(declaration.get("version"))),
                ]
            ),
            self.text("Position (read back from its volumes)", self.heading),
            *self.positions(declaration.get("volumes") or []),
            self.text("Versions", self.heading),
            self.table(
                ["version", "change", "at (UTC)", "by", "log index"],
                [
                    [
                        self.code(v.get("version")),
                        self.text(v.get("change"), self.small),
                        self.text(v.get("at"), self.small),
                        self.text(v.get("actor"), self.small),
                        self.text(v.get("log_index"), self.small),
                    ]
                    for v in pack.get("versions") or []
                ],
                widths=[32, 20, 45, 50, 20],
            ),
            self.text("Notifications", self.heading),
            self.notifications(pack.get("notifications") or []),
            self.text("Signed tree head", self.heading),
            self.pairs(
                [
                    ("root", self.code(head.get("root"))),
                    ("size", self.code(head.get("size"))),
                    ("timestamp", self.code(head.get("timestamp"))),
                    ("signature", self.code(head.get("signature"))),
                ]
            ),
            self.text("The log's public key", self.heading),
            self.pairs(
                [
                    ("algorithm", self.text(key.get("algorithm"))),
                    ("public key", self.code(key.get("public_key"))),
                    ("fingerprint (SHA-256)", self.code(key.get("fingerprint"))),
                ]
            ),
            self.text("How to verify", self.heading),
            *self.how_to_verify(declaration.get("id")),
        ]
        return flow

    def pairs(self, rows: Sequence[tuple[str, Paragraph]]) -> Table:
        table = Table(
            [[self.text(name, self.small), value] for name, value in rows],
            colWidths=[35 * mm, 145 * mm],
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TEXTCOLOR", (0, 0), (0, -1), colors.grey),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                ]
            )
        )
        return table

    def table(self, header: list[str], rows: list[list[Any]], *, widths: list[float]) -> Any:
        if not rows:
            return self.text("None.", self.small)
        table = Table(
            [[self.text(h, self.small) for h in header], *rows],
            colWidths=[w * mm for w in widths],
            repeatRows=1,
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                ]
            )
        )
        return table

    def positions(self, volumes: list[Any]) -> list[Any]:
        lines: list[Any] = []
        for number, item in enumerate(volumes):
            try:
                point = shape(item["geometry"]).representative_point()
                shown = readback(point.y, point.x)
            except (KeyError, TypeError, ValueError, AttributeError):
                lines.append(self.text(f"volume {number}: no position", self.small))
                continue
            mgrs = shown.get("mgrs") or "none (polar)"
            lines.append(
                self.text(
                    f"volume {number}: {shown['decimal']} · {shown['dms']} · MGRS {mgrs}",
                    self.small,
                )
            )
        return lines or [self.text("No volumes.", self.small)]

    def notifications(self, notes: list[Any]) -> Any:
        rows = [
            [
                self.text(n.get("recipient"), self.small),
                self.text(n.get("reason"), self.small),
                self.text(n.get("delivered_at"), self.small),
                self.text(n.get("acknowledged_at"), self.small),
                self.text(n.get("response"), self.small),
                self.text(n.get("comment"), self.small),
            ]
            for n in notes
        ]
        return self.table(
            ["recipient", "reason", "delivered", "acknowledged", "response", "comment"],
            rows,
            widths=[32, 20, 32, 32, 22, 42],
        )

    def how_to_verify(self, declaration_id: Any) -> list[Any]:
        return [
            self.text(
                "1. With deconflict, offline (no service, no database): save the JSON pack and run",
                self.small,
            ),
            self.code(f"deconflict evidence --url URL --token TOKEN {declaration_id} -o pack.json"),
            self.code("deconflict verify --evidence pack.json --public-key KEY"),
            self.text(
                "KEY is the log's public key as you obtained it yourself (from deconflict init "
                "or GET /v1/log/public-key), not the one printed here: compare its SHA-256 with "
                "the fingerprint above. The check names every part of the pack that does not "
                "hold.",
                self.small,
            ),
            Spacer(1, 2 * mm),
            self.text(
                "2. By hand (docs/record.md, 'Checking an evidence pack by hand'): for each "
                "entry, the leaf hash is SHA-256(0x00 || leaf as UTF-8); walking its "
                "inclusion proof (RFC 6962 / RFC 9162 2.1.3.2) from that hash must give the "
                "root above; the signature above is Ed25519 over the UTF-8 bytes of "
                '{"root":"<root>","size":<size>,"timestamp":"<timestamp>"}; a sealed '
                "leaf's commitment is SHA-256(salt || canonical JSON of the entry), and each "
                "value of an opening hashes with its salt to the commitment in its entry.",
                self.small,
            ),
        ]


def _name(declaration: dict[str, Any]) -> Any:
    metadata = declaration.get("metadata")
    return metadata.get("name") if isinstance(metadata, dict) else None
