"""No test module imports from another test module: shared helpers live in tests/support/.

Imports are read with `tokenize`, not `ast`: CPython 3.11.7's ast.parse intermittently fails
("AST constructor recursion depth mismatch", see pyproject.toml)."""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


def statements(source: str) -> Iterator[tuple[int, list[str]]]:
    """(line, tokens) of each simple statement, comments and line breaks left out."""
    words: list[str] = []
    line = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in SKIPPED:
            continue
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or token.string == ";":
            if words:
                yield line, words
            words = []
            continue
        if not words:
            line = token.start[0]
        words.append(token.string)


def imported(words: list[str]) -> list[str]:
    """The modules an import statement names (`from tests import x` names tests.x)."""
    if words[0] == "from" and "import" in words:
        at = words.index("import")
        module = "".join(words[1:at])
        if module != "tests":
            return [module]
        names = [w for w in words[at + 1 :] if w not in ("(", ")")]
        return [f"tests.{name}" for name in "".join(names).split(",") if name and "as" not in name]
    if words[0] == "import":
        modules = "".join(w if w != "as" else " as " for w in words[1:]).split(",")
        return [m.split(" as ")[0] for m in modules if m]
    return []


def imports_from_test_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of each import of a test module or conftest: anything in tests but tests.support,
    and relative imports, which inside tests can only name such a module."""
    found = []
    for line, words in statements(source):
        for module in imported(words):
            is_support = module == "tests.support" or module.startswith("tests.support.")
            if module.startswith(".") or (module.startswith("tests.") and not is_support):
                found.append((line, module))
    return found


def python_files() -> list[Path]:
    return sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "scripts").glob("*.py")])


def test_no_module_imports_a_test_module_or_conftest() -> None:
    files = python_files()
    assert len(files) > 50
    bad = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in files
        for line, module in imports_from_test_modules(path.read_text(encoding="utf-8"))
    ]
    assert bad == [], "move shared helpers into tests/support/:\n" + "\n".join(bad)


def test_the_check_sees_every_form_of_import() -> None:
    source = '''"""from tests.auth.conftest import Server (a docstring, not an import)"""
from tests.auth.conftest import Server, enrol
from tests.rooms.conftest import (
    Client,
    create,
)
import tests.integration.conftest as call
from tests import conftest
from .calls import two_party_call
from tests.support.clock import FakeClock
from tests import support
import tests.support.paths, os; from tests.browser import calls

def later() -> None:
    from tests.recording.test_recorder import make_key
'''
    assert imports_from_test_modules(source) == [
        (2, "tests.auth.conftest"),
        (3, "tests.rooms.conftest"),
        (7, "tests.integration.conftest"),
        (8, "tests.conftest"),
        (9, ".calls"),
        (12, "tests.browser"),
        (15, "tests.recording.test_recorder"),
    ]
