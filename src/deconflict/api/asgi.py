"""The app built from the environment, for ``deconflict serve --workers N`` and for running
deconflict under any ASGI server: ``uvicorn --factory deconflict.api.asgi:create``."""

from __future__ import annotations

from fastapi import FastAPI

from deconflict.api.app import create_app
from deconflict.errors import InvalidRequest
from deconflict.service.deployment import Deployment
from deconflict.settings import DB, Settings, default_key_file
from deconflict.storage.database import open_database
from deconflict.storage.migrations import schema_problem


def create() -> FastAPI:
    settings = Settings.from_environment()
    if not settings.db_url:
        raise InvalidRequest(f"set {DB} to the database URL", field=DB)
    key_file = settings.key_file or default_key_file(settings.db_url)
    db = open_database(settings.db_url)
    problem = schema_problem(db)
    if problem is not None:
        raise InvalidRequest(problem, field=DB)
    deployment = Deployment(db, key_file, tile_url=settings.tile_url)
    return create_app(deployment, settings=settings)
