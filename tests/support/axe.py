"""axe-core (npm, pinned in package.json) run on the page a browser test has open: Playwright's
Chromium pages and tests/support/firefox.py's Firefox pages alike. The pages' CSP refuses script
tags, so the library's source goes in through evaluate, which the browser runs outside the CSP."""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

from tests.support.paths import REPO

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"

# Every rule axe runs by default (WCAG 2 A and AA, best practices), any impact.
RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((node) => node.target.join(" ")),
  }));
}"""


class Page(Protocol):
    def evaluate(self, expression: str, arg: Any = None) -> Any: ...


@cache
def source() -> str:
    return AXE.read_text(encoding="utf-8") + "\n;true"


def describe(violation: dict[str, Any]) -> str:
    """One line: the rule, its impact, what it asks for and the elements that fail it."""
    where = ", ".join(violation["targets"])
    return f"{violation['id']} ({violation['impact']}): {violation['help']}: {where}"


def violations(page: Page) -> list[str]:
    """axe's violations on the page as it is now, one line each (see describe)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(source())
    return sorted(describe(v) for v in page.evaluate(RUN))


def assert_accessible(page: Page, what: str) -> None:
    found = violations(page)
    assert not found, f"axe found on {what}:\n" + "\n".join(found)
