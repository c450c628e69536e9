"""``deconflict import`` against a real ``deconflict serve``: the file sent in chunks, errors
named by the file's own rows and columns, a dry run that writes nothing, a re-import that
leaves everything unchanged, and the exit status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from deconflict.cli import main
from server import init_db, register, serving

pytestmark = pytest.mark.slow

HEADER = "name,category,kind,lat,lon,buffer_m,start,external_id"
START = "2030-01-01T00:00:00Z"


def line(n: int, kind: str = "site", name: str | None = None, external_id: str = "") -> str:
    name = f"Clinic {n}" if name is None else name
    return f"{name},hospital,{kind},33.{n:02d},36.{n:02d},50,{START},{external_id or f'C{n}'}"


def run(base: str, token: str, file: Path, *extra: str) -> tuple[int, str]:
    done = CliRunner().invoke(
        main, ["import", "--url", base, "--token", token, "--chunk-rows", "3", *extra, str(file)]
    )
    return done.exit_code, done.stdout


def test_import_a_file_in_chunks(tmp_path: Path) -> None:
    db_url, coordinator = init_db(tmp_path)
    good = tmp_path / "good.csv"
    good.write_text("\n".join([HEADER, *(line(n) for n in range(1, 9))]) + "\n", "utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join(
            [
                HEADER,
                line(1),
                line(2, name=""),  # no name: found before sending
                line(3),
                line(4, kind="operation"),  # a humanitarian declares no operation
                line(5),
                line(6, external_id="C1"),  # row 1's external id, in another chunk
                line(7),
            ]
        )
        + "\n",
        "utf-8",
    )
    with serving(db_url) as (base, _process):
        relief = register(base, coordinator, "Relief", "humanitarian")
        token = relief["token"]

        def owned() -> int:
            answer = httpx.get(
                f"{base}/v1/declarations",
                params={"owner": relief["id"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            return len(answer.json()["declarations"])

        code, said = run(base, token, good, "--dry-run")
        assert code == 0, said
        assert "dry run: 8 created, 0 updated, 0 unchanged, 0 failed of 8 rows" in said
        assert owned() == 0

        code, said = run(base, token, good)
        assert code == 0, said
        assert "8 created, 0 updated, 0 unchanged, 0 failed of 8 rows" in said
        assert owned() == 8

        code, said = run(base, token, good)
        assert code == 0, said
        assert "0 created, 0 updated, 8 unchanged" in said
        # The chunks went as GeoJSON; the file itself, sent as it is, is the same content.
        direct = httpx.post(
            f"{base}/v1/declarations/import",
            params={"format": "csv"},
            content=good.read_bytes(),
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert (direct["created"], direct["unchanged"]) == (0, 8)

        code, said = run(base, token, bad, "--format", "csv")
        assert code == 1
        assert "3 failed of 7 rows" in said
        table = [row.split("│") for row in said.splitlines() if "│" in row]
        named = {(cells[1].strip(), cells[2].strip()) for cells in table if len(cells) > 3}
        assert {("2", "name"), ("4", "kind"), ("6", "external_id")} <= named

        refused = CliRunner().invoke(
            main, ["import", "--url", base, "--token", "not-a-token", str(good)]
        )
        assert refused.exit_code == 1
        assert "401" in refused.stderr
