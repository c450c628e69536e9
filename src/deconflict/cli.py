"""The ``deconflict`` command line (API.md, "Start-up")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from deconflict import __version__, settings
from deconflict.api.serving import DEFAULT_HOST, DEFAULT_PORT
from deconflict.errors import DeconflictError
from deconflict.settings import Settings, default_key_file

SETTINGS = Settings.from_environment()

db_option = click.option(
    "--db",
    "db_url",
    envvar=settings.DB,
    default=SETTINGS.db_url,
    required=SETTINGS.db_url is None,
    help=f"sqlite:///path/to/file.db or postgresql://user@host/dbname (or {settings.DB})",
)
host_option = click.option("--host", default=DEFAULT_HOST, show_default=True)
port_option = click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
key_option = click.option(
    "--key-file",
    type=click.Path(path_type=Path),
    default=SETTINGS.key_file,
    help="the record's Ed25519 signing key (default: beside a SQLite file; "
    f"or {settings.KEY_FILE})",
)


def _fail(message: str) -> NoReturn:
    click.echo(f"deconflict: {message}", err=True)
    sys.exit(1)


def _initialised_database(db_url: str) -> Any:
    """The database at ``db_url``, closed when the command ends; exits unless initialised."""
    from deconflict.service.bootstrap import is_initialised
    from deconflict.storage.database import open_database

    try:
        db = open_database(db_url)
    except DeconflictError as exc:
        _fail(exc.detail)
    # Close the pool when the command ends, also when it runs in-process (tests, scripts).
    click.get_current_context().call_on_close(db.dispose)
    if not is_initialised(db):
        _fail(f"the database {db_url} is not initialised: run `deconflict init --db {db_url}`")
    return db


def _deployment(db_url: str, key_file: Path | None) -> Any:
    from deconflict.service.deployment import Deployment
    from deconflict.storage.migrations import schema_problem

    db = _initialised_database(db_url)
    problem = schema_problem(db)
    if problem is not None:
        _fail(problem)
    return Deployment(db, key_file or default_key_file(db_url), tile_url=SETTINGS.tile_url)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """deconflict: find every conflict, prove who was told what, and when."""


@main.command()
@db_option
@key_option
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path),
    default=None,
    help="policy TOML to use; written with the defaults when missing "
    "(default: beside a SQLite file, else ./deconflict-policy.toml)",
)
@click.option("--coordinator-name", default="Coordinator", show_default=True)
def init(
    db_url: str, key_file: Path | None, policy_file: Path | None, coordinator_name: str
) -> None:
    """Create the database, the signing key and the coordinator; print its token."""
    from deconflict.service.bootstrap import default_policy_file, initialise
    from deconflict.storage.database import open_database

    try:
        db = open_database(db_url)
        click.get_current_context().call_on_close(db.dispose)
        done = initialise(
            db,
            key_file or default_key_file(db_url),
            policy_file or default_policy_file(db_url),
            coordinator_name=coordinator_name,
        )
    except DeconflictError as exc:
        _fail(exc.detail)
        return
    if done.policy_written:
        click.echo(f"wrote the default policy to {done.policy_file}", err=True)
    click.echo(f"signing key: {done.key_file} (keep it secret)", err=True)
    click.echo(
        json.dumps(
            {"coordinator_token": done.coordinator_token, "log_public_key": done.log_public_key}
        )
    )


@main.command()
@db_option
def migrate(db_url: str) -> None:
    """Upgrade the database's schema to this version of deconflict (a no-op when it is)."""
    from deconflict.storage.migrations import current_revision, head_revision, upgrade

    db = _initialised_database(db_url)
    before = current_revision(db)
    if before == head_revision():
        click.echo(f"the database {db_url} is at revision {before} already: nothing to do")
        return
    try:
        upgrade(db)
    except DeconflictError as exc:
        _fail(exc.detail)
    click.echo(
        f"migrated {db_url} from revision {before or 'none (made before migrations)'} "
        f"to {current_revision(db)}"
    )


@main.command()
@db_option
@key_option
@host_option
@port_option
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="worker processes (default: one per core, at most 4); any number of them, and of "
    "serve commands, may share a database",
)
def serve(
    db_url: str, key_file: Path | None, host: str, port: int, log_level: str, workers: int | None
) -> None:
    """Serve the API and the web page."""
    from deconflict.api.app import create_app
    from deconflict.api.serving import default_workers, serve_app, serve_workers
    from deconflict.settings import export_for_workers

    workers = workers or default_workers()
    deployment = _deployment(db_url, key_file)
    try:
        deployment.key  # noqa: B018 - fail now, not at the first write, on an unusable key
    except (OSError, ValueError) as exc:
        _fail(f"cannot use the signing key {deployment.key_file}: {exc}")
    click.echo(
        f"deconflict {__version__} serving http://{host}:{port}/ on {db_url}"
        + (f" with {workers} workers" if workers > 1 else ""),
        err=True,
    )
    if workers > 1:
        deployment.db.dispose()
        export_for_workers(db_url, deployment.key_file)
        try:
            code = serve_workers(host, port, workers, log_level)
        except OSError as exc:
            _fail(f"cannot listen on {host}:{port}: {exc}")
        sys.exit(code)
    serve_app(create_app(deployment, settings=SETTINGS), host, port, log_level)


@main.command()
@click.option("--db", "db_url", envvar=settings.DB, default=None, help="verify a database")
@click.option("--url", default=None, help="verify a running service over HTTP, as a party would")
@click.option(
    "--heads",
    type=click.Path(path_type=Path),
    default=None,
    help="with --url: JSON lines of tree heads seen before; the new head is appended",
)
@click.option(
    "--receipts",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="with --url: JSON lines of receipts (or whole write answers) whose inclusion to check",
)
@click.option(
    "--public-key",
    default=None,
    help="the log's public key (base64) to pin, instead of the one the database or service holds",
)
@click.option(
    "--evidence",
    "evidence_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="check an evidence pack (GET /v1/declarations/{id}/evidence) offline, with "
    "--public-key: no service, no database",
)
def verify(
    db_url: str | None,
    url: str | None,
    heads: Path | None,
    receipts: Path | None,
    public_key: str | None,
    evidence_file: Path | None,
) -> None:
    """Check the record: exit 0 when all is consistent, 1 naming the first bad entry.

    With --db it recomputes every leaf from the stored rows and checks the tree and every
    signed head; it needs only the public key, not the signing key. With --url it is a
    party's own check of a running service against the heads it saved before. With
    --evidence it checks an evidence pack alone against the key, and names every part of it
    that does not hold.
    """
    from deconflict.record import client

    if evidence_file is not None:
        _verify_evidence(evidence_file, public_key)
        return
    if url:
        if heads is None:
            _fail("--url needs --heads FILE to keep the heads it has seen")
            return
        result = client.verify_remote(url, heads, receipts, public_key_b64=public_key)
    elif db_url:
        result = _verify_database(db_url, public_key)
    else:
        _fail(f"give --db URL (or {settings.DB}), or --url URL --heads FILE")
        return
    click.echo(str(result))
    sys.exit(0 if result.ok else 1)


def _verify_database(db_url: str, public_key: str | None) -> Any:
    from rich.progress import Progress

    from deconflict.record import fsck
    from deconflict.storage.meta import get_meta

    deployment = _deployment(db_url, None)
    if public_key is None:
        with deployment.db.read() as conn:
            public_key = get_meta(conn, "log_public_key")
    if public_key is None:
        _fail("the database holds no public key: pass --public-key")
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("verifying the record", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return fsck.verify_database(deployment.db.engine, str(public_key), progress=advance)


_EXTENSIONS = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".kml": "kml",
    ".kmz": "kml",
}


@main.command("import")
@click.option("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
@click.option("--token", required=True, envvar="DECONFLICT_TOKEN", help="the party's token")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "geojson", "kml"]),
    default=None,
    help="the file's format (default: from its extension)",
)
@click.option("--dry-run", is_flag=True, help="check every row and write nothing")
@click.option("--chunk-rows", default=500, show_default=True, type=click.IntRange(1, 10_000))
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def import_(
    url: str, token: str, fmt: str | None, dry_run: bool, chunk_rows: int, file: Path
) -> None:
    """Import the sites or movements of a CSV, XLSX, GeoJSON or KML/KMZ file, one a row.

    Each row goes through the rules of POST /v1/declarations. The file is read here first,
    then sent a chunk of rows at a time; errors name the file's own rows and columns. Exit
    0 when every row was created, updated or unchanged, 1 when any row failed.
    """
    fmt = fmt or _EXTENSIONS.get(file.suffix.lower())
    if fmt is None:
        _fail(f"cannot tell the format of {file.name} from its extension: pass --format")
    _import_file(url, token, fmt, dry_run, chunk_rows, file)


def _import_file(
    url: str, token: str, fmt: str, dry_run: bool, chunk_rows: int, file: Path
) -> None:
    import httpx
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from deconflict.importing import read_rows
    from deconflict.importing.upload import Outcome, UploadError, chunks, send_chunk

    try:
        # The service bounds each request; the file as a whole only by this machine.
        rows = read_rows(file.read_bytes(), fmt, max_rows=10_000_000, max_bytes=2**31)
    except DeconflictError as exc:
        fields = ", ".join(e["field"] for e in exc.errors)
        _fail(f"{file.name}: {exc.detail}" + (f" ({fields})" if fields else ""))
    outcomes = [Outcome(r.row, "error", list(r.errors)) for r in rows if r.errors]
    good = [r for r in rows if not r.errors and r.document is not None]
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    verb = "checking" if dry_run else "importing"
    with (
        httpx.Client(base_url=url.rstrip("/"), timeout=600) as client,
        Progress(*columns, console=console, disable=not console.is_terminal) as progress,
    ):
        task = progress.add_task(f"{verb} {file.name}", total=len(rows))
        progress.advance(task, len(outcomes))
        for chunk in chunks(good, chunk_rows):
            try:
                outcomes.extend(send_chunk(client, token, chunk, dry_run=dry_run))
            except (UploadError, httpx.HTTPError) as exc:
                progress.stop()
                _fail(
                    f"{file.name}: the service refused rows {chunk[0].row}-{chunk[-1].row}: {exc}"
                )
            progress.advance(task, len(chunk))
    outcomes.sort(key=lambda o: o.row)
    failed = [o for o in outcomes if o.status == "error"]
    out = Console()
    if failed:
        table = Table(title=f"rows of {file.name} that were not imported")
        for name in ("row", "column", "message"):
            table.add_column(name, justify="right" if name == "row" else "left")
        for outcome in failed:
            for error in outcome.errors or []:
                table.add_row(str(outcome.row), error.field, error.message)
        out.print(table)
    totals = {s: sum(1 for o in outcomes if o.status == s) for s in ("created", "updated")}
    totals["unchanged"] = sum(1 for o in outcomes if o.status == "unchanged")
    summary = ", ".join(f"{count} {status}" for status, count in totals.items())
    out.print(
        f"{'dry run: ' if dry_run else ''}{summary}, {len(failed)} failed "
        f"of {len(rows)} rows" + (" (nothing was written)" if dry_run else "")
    )
    sys.exit(1 if failed else 0)


def _verify_evidence(evidence_file: Path, public_key: str | None) -> None:
    """``verify --evidence``: the checks are ``record.evidence_check``'s; this only prints."""
    from deconflict.record.evidence_check import check_evidence

    if public_key is None:
        _fail(
            "--evidence needs --public-key KEY: the log's key as you got it from init or "
            "GET /v1/log/public-key, not the one inside the pack"
        )
        return
    try:
        pack = json.loads(evidence_file.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        _fail(f"{evidence_file} is not a JSON evidence pack: {exc}")
        return
    result = check_evidence(pack, public_key.strip())
    click.echo(str(result))
    sys.exit(0 if result.ok else 1)


@main.command()
@click.argument("declaration_id")
@click.option("--url", required=True, help="the service, e.g. https://deconflict.example.org")
@click.option("--token", required=True, help="your party's token (owner or coordinator)")
@click.option("--pdf", is_flag=True, help="the printable report instead of the JSON pack")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="where to write it (default: evidence-<id>.json or .pdf here)",
)
def evidence(declaration_id: str, url: str, token: str, pdf: bool, output: Path | None) -> None:
    """Download a declaration's evidence pack (GET /v1/declarations/{id}/evidence).

    Check the JSON pack offline with `deconflict verify --evidence FILE --public-key KEY`.
    """
    import httpx

    suffix = "pdf" if pdf else "json"
    target = output or Path(f"evidence-{declaration_id}.{suffix}")
    address = f"{url.rstrip('/')}/v1/declarations/{declaration_id}/evidence"
    try:
        answer = httpx.get(
            address,
            params={"format": suffix},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120.0,
        )
    except httpx.HTTPError as exc:
        _fail(f"GET {address} failed: {exc}")
        return
    if answer.status_code != 200:
        _fail(f"GET {address} answered {answer.status_code}: {answer.text[:300]}")
    target.write_bytes(answer.content)
    click.echo(f"wrote {target} ({len(answer.content)} bytes)", err=True)


@main.command("check-opening")
@click.argument("opening_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--url",
    default=None,
    help="fetch the leaf from this service's public log and check it is in the signed tree, "
    "instead of trusting the leaf in the file",
)
def check_opening(opening_file: Path, url: str | None) -> None:
    """Check an opening (from GET /v1/declarations/{id}/opening) against its record leaf.

    Exit 0 when every commitment of the leaf opens to the values in the file: proof of
    exactly what was declared. Exit 1 naming the fields that do not match.
    """
    from deconflict.record import client
    from deconflict.record.entries import check_declaration_opening

    try:
        opening = json.loads(opening_file.read_text("utf-8"))
        leaf = opening["leaf"]
        index = int(opening["log_index"])
    except (ValueError, KeyError, TypeError) as exc:
        _fail(f"{opening_file} is not an opening from GET /v1/declarations/{{id}}/opening: {exc}")
        return
    if url:
        try:
            leaf = client.fetch_included_leaf(url, index)
        except client.AuditError as exc:
            _fail(str(exc))
            return
    mismatched = check_declaration_opening(leaf, opening)
    if mismatched:
        _fail(f"the opening does not match entry {index}: {', '.join(mismatched)}")
    click.echo(
        f"proven: entry {index} commits to exactly these values of declaration "
        f"{opening.get('declaration_id')} version {opening.get('version')}"
        + (f" (leaf included in the signed tree of {url})" if url else "")
    )


@main.group()
def policy() -> None:
    """Show or change the policy in force."""


@policy.command("show")
@db_option
@key_option
def policy_show(db_url: str, key_file: Path | None) -> None:
    """Print the policy in force as TOML."""
    from deconflict.service.bootstrap import policy_text

    click.echo(policy_text(_deployment(db_url, key_file)), nl=False)


@policy.command("set")
@db_option
@key_option
@click.argument("policy_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def policy_set(db_url: str, key_file: Path | None, policy_file: Path) -> None:
    """Validate POLICY_FILE and put it in force (logged in the record)."""
    from deconflict.service.bootstrap import apply_policy, first_coordinator

    deployment = _deployment(db_url, key_file)
    text = policy_file.read_text("utf-8")
    try:
        with deployment.writing() as write:
            policy_id = apply_policy(write, text, first_coordinator(deployment))
            write.journal.head()
    except DeconflictError as exc:
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
        _fail(f"{exc.detail}{': ' + fields if fields else ''}")
        return
    click.echo(f"policy {policy_id} is in force")


@main.command()
@db_option
@key_option
@click.argument("scenario_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def load(db_url: str, key_file: Path | None, scenario_file: Path) -> None:
    """Load a scenario (docs/scenario.md) through the same rules as the API; print the
    parties' tokens and what it made."""
    from rich.console import Console

    from deconflict.scenario.format import read_scenario
    from deconflict.scenario.loader import load_scenario
    from deconflict.scenario.report import print_report

    deployment = _deployment(db_url, key_file)
    try:
        report = load_scenario(deployment, read_scenario(scenario_file))
    except DeconflictError as exc:
        more = [f"  {e['field']}: {e['message']}" for e in exc.errors[1:]]
        _fail("\n".join([f"{scenario_file}: {exc.detail}", *more]))
        return
    print_report(report, Console())


@main.command()
@click.option(
    "--volumes",
    "volumes_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help='JSON lines: one API.md Volume plus an "id" per line, stored as operations',
)
@click.option(
    "--queries",
    "queries_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="JSON lines in the same shape, each checked as a what-if operation",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="write the measures and every query's conflicting ids here as JSON",
)
def bench(volumes_file: Path, queries_file: Path, out_file: Path | None) -> None:
    """Time what-if conflict checks against the service's own index, in-process.

    Loads the volumes as operations of distinct owners under the default policy, checks
    every query, and prints load time, p50/p99 latency, checks/s, memory per volume and
    mean conflicts per query.
    """
    from rich.console import Console

    from deconflict import bench as benchmark

    try:
        result = benchmark.run(volumes_file, queries_file, Console(stderr=True))
    except benchmark.BenchFileError as exc:
        _fail(str(exc))
        return
    Console().print(benchmark.table(result))
    if out_file is not None:
        out_file.write_text(json.dumps(result.to_json(), indent=1) + "\n", "utf-8")
