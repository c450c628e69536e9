"""``make demo``: a fresh deployment with the built-in scenario, served on this machine.

    python -m deconflict.scenario.demo --dir demo-data --host 127.0.0.1 --port 8000

Deletes and recreates DIR (only if it is empty or a demo made it), initialises a SQLite
database there, loads ``scenarios/demo.json`` (see ``docs/scenario.md``), prints the URL and
each party's token, and serves the API and the web page until interrupted.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console

from deconflict.api.serving import DEFAULT_HOST, DEFAULT_PORT, serve_app
from deconflict.errors import DeconflictError
from deconflict.scenario.format import builtin_scenario
from deconflict.scenario.loader import load_scenario
from deconflict.scenario.report import print_report
from deconflict.service.bootstrap import default_policy_file, initialise
from deconflict.service.deployment import Deployment
from deconflict.settings import Settings, default_key_file
from deconflict.storage.database import Database

# Written into DIR, so that a later run knows the folder is a demo's and may delete it.
MARKER = ".deconflict-demo"


def fresh_directory(directory: Path) -> None:
    """Empty ``directory``, refusing to delete a folder that a demo did not make."""
    if directory.exists():
        if not directory.is_dir():
            raise click.ClickException(f"{directory} exists and is not a folder")
        if any(directory.iterdir()) and not (directory / MARKER).exists():
            raise click.ClickException(
                f"{directory} holds files that a demo did not make; choose another --dir"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text(
        "made by `python -m deconflict.scenario.demo`; deleted by the next\n"
    )


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("demo-data"),
    show_default=True,
    help="folder for the demo's database and key (recreated)",
)
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
def main(directory: Path, host: str, port: int) -> None:
    """Set up a demo deployment with the built-in scenario and serve it."""
    from deconflict.api.app import create_app

    console = Console()
    settings = Settings.from_environment()
    fresh_directory(directory)
    db_url = f"sqlite:///{directory.resolve() / 'demo.db'}"
    database = Database(db_url)
    key_file = default_key_file(db_url)
    # The built-in scenario's clock starts 3 h before now; the deployment is created just
    # before that, so the record's timestamps only ever move forward.
    created = datetime.now(UTC) - timedelta(hours=3, minutes=5)
    done = initialise(
        database,
        key_file,
        default_policy_file(db_url),
        coordinator_name="Joint Coordination Cell",
        clock=lambda: created,
    )
    deployment = Deployment(database, key_file, tile_url=settings.tile_url)
    try:
        report = load_scenario(deployment, builtin_scenario())
    except DeconflictError as exc:  # only if the shipped scenario itself is broken
        console.print(f"[red]the built-in scenario did not load:[/] {exc.detail}")
        sys.exit(1)
    url = f"http://{host}:{port}/"
    console.rule("[bold]deconflict demo")
    console.print(
        "Four days over a fictional theatre: two air forces declare operations, two aid "
        "organisations declare hospitals, schools, a convoy and an evacuation, and the "
        "coordinator has closed the area around Qadira to one of the air forces. Some "
        "operations conflict; some notifications are acknowledged, some are overdue."
    )
    print_report(report, console, coordinator_token=done.coordinator_token)
    console.print(
        f"\nOpen [bold link={url}]{url}[/] and paste a token to log in as that party: each "
        "sees what its role may see, nothing more (operators see operations; aid "
        "organisations do not).\n"
        f"Database: {db_url}. Try `deconflict verify --db {db_url}`. Stop with Ctrl+C.",
        highlight=False,
    )
    serve_app(create_app(deployment, settings=settings), host, port, "warning")


if __name__ == "__main__":
    main()
