"""Every setting of the service, read once from the environment.

One registry feeds the CLI's defaults, `GET /v1/config` and the README's table; a test fails
when a setting is missing from the README. Nothing outside this module reads ``os.environ``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | None
    help: str


DB = "DECONFLICT_DB"
KEY_FILE = "DECONFLICT_KEY_FILE"
TILE_URL = "DECONFLICT_TILE_URL"
WEBHOOK_TIMEOUT_S = "DECONFLICT_WEBHOOK_TIMEOUT_S"
WEBHOOK_MAX_ATTEMPTS = "DECONFLICT_WEBHOOK_MAX_ATTEMPTS"
CHECK_THREADS = "DECONFLICT_CHECK_THREADS"
WEBHOOK_ALLOW = "DECONFLICT_WEBHOOK_ALLOW"
WEBHOOK_ALLOW_PRIVATE = "DECONFLICT_WEBHOOK_ALLOW_PRIVATE"
ESCALATION_INTERVAL_S = "DECONFLICT_ESCALATION_INTERVAL_S"

SETTINGS: tuple[Setting, ...] = (
    Setting(DB, None, "database URL, stands in for --db"),
    Setting(
        KEY_FILE,
        None,
        "path of the Ed25519 signing key of the record (default: beside a SQLite file, "
        "else ./deconflict-log.key)",
    ),
    Setting(
        TILE_URL,
        None,
        "optional online tile server for the web page's map, e.g. https://tile.example/{z}/{x}/{y}.png",
    ),
    Setting(
        WEBHOOK_TIMEOUT_S,
        "5",
        "seconds a webhook attempt may take in all: connecting, TLS, sending and the answer's "
        "headers",
    ),
    Setting(WEBHOOK_MAX_ATTEMPTS, "12", "attempts before a webhook delivery gives up"),
    Setting(
        CHECK_THREADS,
        None,
        "threads that share a conflict check reading many stored volumes (default: one per "
        "core, at most 2; 1 keeps every check in one thread)",
    ),
    Setting(
        WEBHOOK_ALLOW,
        "",
        "comma-separated networks (CIDR or addresses) and host names (`*.corp.example` for "
        "every name under one) that webhooks may reach beyond public addresses, e.g. "
        "`10.1.2.0/24,hooks.corp.example` for an internal receiver",
    ),
    Setting(
        WEBHOOK_ALLOW_PRIVATE,
        "0",
        "1 allows webhooks to every loopback, private, link-local and reserved address "
        "(the old default; prefer DECONFLICT_WEBHOOK_ALLOW)",
    ),
    Setting(
        ESCALATION_INTERVAL_S,
        "15",
        "seconds between two sweeps for overdue acknowledgments in each `serve` process "
        "(each late one is escalated once, by whichever process sees it first)",
    ),
)


_BY_ENV = {setting.env: setting for setting in SETTINGS}


def _read(env: str) -> str | None:
    """The variable as it is set (empty too), or the setting's default when it is not."""
    return os.environ.get(env, _BY_ENV[env].default)


def _read_or_default(env: str) -> str:
    """The variable, or the setting's default when it is unset or empty (for a setting that
    has one)."""
    value = os.environ.get(env) or _BY_ENV[env].default
    if value is None:
        raise KeyError(f"{env} has no default")
    return value


@dataclass(frozen=True)
class Settings:
    """The settings in force, read once at start-up."""

    db_url: str | None
    key_file: Path | None
    tile_url: str | None
    webhook_timeout_s: float
    webhook_max_attempts: int
    webhook_allow: str
    webhook_allow_private: bool
    escalation_interval_s: float = 15.0

    @classmethod
    def from_environment(cls) -> Settings:
        key_file = _read(KEY_FILE)
        return cls(
            db_url=_read(DB),
            key_file=Path(key_file) if key_file else None,
            tile_url=_read(TILE_URL) or None,
            webhook_timeout_s=float(_read_or_default(WEBHOOK_TIMEOUT_S)),
            webhook_max_attempts=int(_read_or_default(WEBHOOK_MAX_ATTEMPTS)),
            webhook_allow=_read_or_default(WEBHOOK_ALLOW),
            webhook_allow_private=_read(WEBHOOK_ALLOW_PRIVATE) == "1",
            escalation_interval_s=_seconds(ESCALATION_INTERVAL_S),
        )


def _seconds(env: str) -> float:
    """A positive number of seconds (at most a day); a clear error naming the variable
    otherwise, at start-up."""
    text = _read_or_default(env)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86_400:
        raise ValueError(f"{env} must be a number of seconds above 0, at most 86400; not {text!r}")
    return value


def check_threads() -> int:
    """``DECONFLICT_CHECK_THREADS``, or one per core this process may run on, at most 2."""
    configured = _read(CHECK_THREADS)
    if configured:
        return max(1, int(configured))
    return min(2, len(os.sched_getaffinity(0)))


def default_key_file(db_url: str) -> Path:
    """Where the signing key lives when no path is configured: beside a SQLite database file."""
    if db_url.startswith("sqlite:///"):
        return Path(db_url.removeprefix("sqlite:///") + ".key")
    return Path("deconflict-log.key")


def export_for_workers(db_url: str, key_file: Path) -> None:
    """Hand the database and key to worker processes started by ``serve --workers``: they
    build their app from the environment (``deconflict.api.asgi``)."""
    os.environ[DB] = db_url
    os.environ[KEY_FILE] = str(key_file)
