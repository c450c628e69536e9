"""The command line: init, serve's preconditions, policy show/set."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from deconflict.cli import main
from deconflict.policy import parse_policy


def init(tmp_path: Path, *extra: str) -> tuple[str, dict[str, str]]:
    db_url = f"sqlite:///{tmp_path / 'd.db'}"
    result = CliRunner().invoke(main, ["init", "--db", db_url, *extra])
    assert result.exit_code == 0, result.output
    return db_url, json.loads(result.stdout)


def test_init_prints_the_coordinator_token_and_public_key(tmp_path: Path) -> None:
    _db_url, printed = init(tmp_path)
    assert set(printed) == {"coordinator_token", "log_public_key"}
    assert len(printed["coordinator_token"]) > 30
    key_file = tmp_path / "d.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    policy_file = tmp_path / "d.db.policy.toml"
    assert parse_policy(policy_file.read_text()).separation_for("operation", "operation")


def test_init_twice_fails_with_a_clear_message(tmp_path: Path) -> None:
    db_url, _ = init(tmp_path)
    again = CliRunner().invoke(main, ["init", "--db", db_url, "--key-file", str(tmp_path / "k2")])
    assert again.exit_code == 1
    assert "initialised already" in again.stderr


def test_db_may_come_from_the_environment(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'env.db'}"
    result = CliRunner().invoke(main, ["init"], env={"DECONFLICT_DB": db_url})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'empty.db'}"
    for command in (
        ["serve", "--db", db_url],
        ["verify", "--db", db_url],
        ["policy", "show", "--db", db_url],
    ):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, command
        assert "not initialised" in result.stderr


def test_unsupported_database_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", "--db", "mysql://x/y"])
    assert result.exit_code == 1
    assert "unsupported database URL" in result.stderr


def test_policy_set_changes_separations(tmp_path: Path) -> None:
    db_url, _ = init(tmp_path)
    shown = CliRunner().invoke(main, ["policy", "show", "--db", db_url])
    assert "horizontal_m = 9260" in shown.stdout
    changed = tmp_path / "wider.toml"
    changed.write_text(shown.stdout.replace("horizontal_m = 9260", "horizontal_m = 18520"))
    result = CliRunner().invoke(main, ["policy", "set", "--db", db_url, str(changed)])
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(main, ["policy", "show", "--db", db_url])
    assert "horizontal_m = 18520" in shown.stdout


def test_policy_set_refuses_a_bad_policy_naming_the_field(tmp_path: Path) -> None:
    db_url, _ = init(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[separation.operation-spaceship]\nhorizontal_m = 1\nvertical_m = 1\n"
        '[visibility]\noperation = ["operator"]\n'
    )
    result = CliRunner().invoke(main, ["policy", "set", "--db", db_url, str(bad)])
    assert result.exit_code == 1
    assert "separation" in result.stderr


def test_every_command_works_on_both_backends(db_url: str, tmp_path: Path) -> None:
    key = ["--key-file", str(tmp_path / "log.key")]
    runner = CliRunner()
    made = runner.invoke(main, ["init", "--db", db_url, *key, "--policy", str(tmp_path / "p.toml")])
    assert made.exit_code == 0, made.output
    assert (
        runner.invoke(main, ["init", "--db", db_url, "--key-file", str(tmp_path / "k2")]).exit_code
        == 1
    )
    shown = runner.invoke(main, ["policy", "show", "--db", db_url, *key])
    assert shown.exit_code == 0 and "[separation.operation-operation]" in shown.stdout
    scenario = tmp_path / "tiny.json"
    scenario.write_text(
        json.dumps(
            {
                "version": 1,
                "name": "tiny",
                "parties": [{"ref": "aid", "name": "Aid", "role": "humanitarian"}],
                "steps": [
                    {
                        "as": "aid",
                        "ref": "h1",
                        "kind": "site",
                        "category": "hospital",
                        "volumes": [
                            {
                                "geometry": {"type": "Point", "coordinates": [36.3, 33.5]},
                                "time": {"start": "+1d", "end": None},
                            }
                        ],
                    }
                ],
            }
        )
    )
    loaded = runner.invoke(main, ["load", "--db", db_url, *key, str(scenario)])
    assert loaded.exit_code == 0, loaded.output
    verified = runner.invoke(main, ["verify", "--db", db_url])
    assert verified.exit_code == 0, verified.output


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        pytest.param(
            'disclose_to_owner = "redacted"',
            'disclose_to_owner = "everything"',
            "protection.disclose_to_owner",
            id="disclosure-level",
        ),
        pytest.param(
            'altitude = "ignored"', 'altitude = "mostly"', "protection.altitude", id="altitude"
        ),
        pytest.param(
            'kinds = ["site", "movement"]',
            'kinds = ["site", "operation"]',
            "protection.kinds.1",
            id="kind",
        ),
    ],
)
def test_policy_set_refuses_a_bad_protection_naming_the_field(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    db_url, _ = init(tmp_path)
    shown = CliRunner().invoke(main, ["policy", "show", "--db", db_url]).stdout
    assert old in shown
    bad = tmp_path / "bad.toml"
    bad.write_text(shown.replace(old, new))
    result = CliRunner().invoke(main, ["policy", "set", "--db", db_url, str(bad)])
    assert result.exit_code == 1
    assert f"{field}: " in result.stderr
    assert "Traceback" not in result.output
    assert CliRunner().invoke(main, ["policy", "show", "--db", db_url]).stdout == shown
