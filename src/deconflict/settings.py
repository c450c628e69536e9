"""Every setting of the service, read once from the environment.

One registry feeds the CLI's defaults, `GET /v1/config` and the README's table; a test fails
when a setting is missing from the README. Nothing outside this module reads ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DECONFLICT_DB", None, "database URL, stands in for --db"),
    Setting(
        "DECONFLICT_KEY_FILE",
        None,
        "path of the Ed25519 signing key of the record (default: beside a SQLite file, "
        "else ./deconflict-log.key)",
    ),
    Setting(
        "DECONFLICT_TILE_URL",
        None,
        "optional online tile server for the web page's map, e.g. https://tile.example/{z}/{x}/{y}.png",
    ),
    Setting(
        "DECONFLICT_WEBHOOK_TIMEOUT_S",
        "5",
        "seconds a webhook attempt may take in all: connecting, TLS, sending and the answer's "
        "headers",
    ),
    Setting("DECONFLICT_WEBHOOK_MAX_ATTEMPTS", "12", "attempts before a webhook delivery gives up"),
    Setting(
        "DECONFLICT_CHECK_THREADS",
        None,
        "threads that share a conflict check reading many stored volumes (default: one per "
        "core, at most 2; 1 keeps every check in one thread)",
    ),
    Setting(
        "DECONFLICT_WEBHOOK_ALLOW",
        "",
        "comma-separated networks (CIDR or addresses) and host names (`*.corp.example` for "
        "every name under one) that webhooks may reach beyond public addresses, e.g. "
        "`10.1.2.0/24,hooks.corp.example` for an internal receiver",
    ),
    Setting(
        "DECONFLICT_WEBHOOK_ALLOW_PRIVATE",
        "0",
        "1 allows webhooks to every loopback, private, link-local and reserved address "
        "(the old default; prefer DECONFLICT_WEBHOOK_ALLOW)",
    ),
)


def _read(env: str) -> str | None:
    for setting in SETTINGS:
        if setting.env == env:
            return os.environ.get(env, setting.default)
    raise KeyError(f"unknown setting {env}")


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

    @classmethod
    def from_environment(cls) -> Settings:
        key_file = _read("DECONFLICT_KEY_FILE")
        return cls(
            db_url=_read("DECONFLICT_DB"),
            key_file=Path(key_file) if key_file else None,
            tile_url=_read("DECONFLICT_TILE_URL") or None,
            webhook_timeout_s=float(_read("DECONFLICT_WEBHOOK_TIMEOUT_S") or "5"),
            webhook_max_attempts=int(_read("DECONFLICT_WEBHOOK_MAX_ATTEMPTS") or "12"),
            webhook_allow=_read("DECONFLICT_WEBHOOK_ALLOW") or "",
            webhook_allow_private=_read("DECONFLICT_WEBHOOK_ALLOW_PRIVATE") == "1",
        )


def check_threads() -> int:
    """``DECONFLICT_CHECK_THREADS``, or one per core this process may run on, at most 2."""
    configured = _read("DECONFLICT_CHECK_THREADS")
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
    os.environ["DECONFLICT_DB"] = db_url
    os.environ["DECONFLICT_KEY_FILE"] = str(key_file)
