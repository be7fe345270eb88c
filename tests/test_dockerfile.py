"""What the Dockerfile's text must say and a build cannot show. tests/test_image.py builds and runs
it: the base image, user, command, HEALTHCHECK, data folder and media ports at work."""

import json
import re

from tests.support.image import final_stage, instructions
from tests.support.paths import REPO


def env(values: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for value in values for item in value.split())


def test_every_stage_builds_on_the_one_base_argument() -> None:
    steps = instructions()
    assert steps[0] == ("ARG", "BASE=debian:bookworm-slim"), "one place names the base; CI's is made locally"
    assert [rest.split()[0] for word, rest in steps if word == "FROM"] == ["${BASE}", "${BASE}"]


def test_apt_installs_only_what_it_names_and_keeps_no_lists() -> None:
    runs = [rest for word, rest in instructions() if word == "RUN" and "apt-get install" in rest]
    assert runs
    for run in runs:
        assert "--no-install-recommends" in run
        assert "rm -rf /var/lib/apt/lists/*" in run, "clean the lists in the same layer"


def test_the_package_is_installed_without_extras() -> None:
    targets = [
        target
        for word, rest in instructions()
        if word == "RUN"
        for target in re.findall(r"pip install ((?:-r )?\S+)", rest)
    ]
    assert targets == ["-r /tmp/requirements.txt", "/src"], "pyproject's dependencies, then the package"
    assert all("[" not in target for target in targets), "no test or dev extras in the image"


def test_the_image_gets_nothing_from_the_context_but_the_built_environment() -> None:
    final = final_stage()
    assert all(copy.startswith("--from=") for copy in final.get("COPY", [])), "no sources in the image"
    assert "ADD" not in final


def test_signals_reach_vsession_directly() -> None:
    final = final_stage()
    (cmd,) = final["CMD"]
    assert isinstance(json.loads(cmd), list), "exec form: `docker stop` signals vsession, not a shell"
    (healthcheck,) = final["HEALTHCHECK"]
    assert isinstance(json.loads(healthcheck.partition(" CMD ")[2]), list)


def test_the_exposed_media_range_is_the_one_the_server_uses() -> None:
    final = final_stage()
    (udp,) = [port for port in " ".join(final["EXPOSE"]).split() if port.endswith("/udp")]
    assert udp.removesuffix("/udp") == env(final["ENV"])["VSESSION_MEDIA_PORTS"]


def test_the_build_context_is_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is left out unless named (.venv, node_modules, data, test-artifacts)"
    let_in = {line[1:] for line in lines if line.startswith("!")}
    copied = set()
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from="):
            copied.update(rest.split()[:-1])
    assert let_in == copied
    assert all((REPO / name).exists() for name in copied)
    assert "**/__pycache__" in lines and re.search(r"\*\.pyc", " ".join(lines))
