"""A scenario's acknowledge step gives a response (and a comment), as the API does."""

from __future__ import annotations

import copy
from pathlib import Path

from test_scenario import SMALL, fresh

from deconflict.scenario.loader import load_scenario
from deconflict.service.bootstrap import first_coordinator
from deconflict.service.notifications import deliveries


def test_an_acknowledge_step_answers_with_its_response_and_comment(tmp_path: Path) -> None:
    deployment, _ = fresh(tmp_path)
    document = copy.deepcopy(SMALL)
    document["steps"][-1] = {
        "as": "north",
        "acknowledge": ["hospital"],
        "response": "cannot_assure",
        "comment": "Strike window fixed; cannot assure the site.",
    }
    report = load_scenario(deployment, document)
    coordinator = first_coordinator(deployment)
    answered = [
        d.notification
        for d in deliveries(deployment, coordinator, report.declarations["hospital"])
        if d.notification["acknowledged_at"] is not None
    ]
    assert [(n["response"], n["response_comment"]) for n in answered] == [
        ("cannot_assure", "Strike window fixed; cannot assure the site.")
    ]
    deployment.db.dispose()
