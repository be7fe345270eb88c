"""The admin's documents name what the code has: every setting in README's table, and every file
docs/deploy.md tells them to use. (Metric names: tests/metrics/test_metrics.py, against a real scrape.)"""

from __future__ import annotations

import dataclasses
import re

from tests.support.paths import REPO
from vsession.config import Settings


def test_every_setting_is_in_the_readme_table() -> None:
    table = [
        line
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    named = {name for line in table for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert {f.name for f in dataclasses.fields(Settings)} - named == set()
    assert named - {f.name for f in dataclasses.fields(Settings)} == set(), (
        "the table names a setting that is gone"
    )


def test_the_files_the_deployment_guide_names_exist() -> None:
    guide = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    named = set(
        re.findall(r"`((?:deploy|docs|scripts)/[\w./-]+|Dockerfile|compose\.yaml|\.env\.example)`", guide)
    )
    assert {
        "Dockerfile",
        "compose.yaml",
        ".env.example",
        "deploy/Caddyfile",
        "deploy/turnserver.conf",
    } <= named
    assert sorted(path for path in named if not (REPO / path).exists()) == []
    linked = re.findall(r"\]\(([\w.-]+\.md)\)", guide)
    assert sorted(page for page in linked if not (REPO / "docs" / page).exists()) == []
