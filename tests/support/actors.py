"""People acting on a live `vsession serve` over plain HTTP (urllib, synchronous), for browser
tests, integration tests and benchmarks: a therapist who enrols and schedules, clients who redeem
their links and wait, and the therapist admitting them."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pyotp

PASSWORD = "violet kettle harbour quietly 42"


@dataclass
class Agent:
    """One user agent: its cookies, its CSRF token, and the server's origin on every POST."""

    origin: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _request(self, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.update(
                {"Content-Type": "application/json", "Origin": self.origin, "X-CSRF-Token": self.csrf}
            )
        request = urllib.request.Request(self.origin + path, data=data, headers=headers)
        with urllib.request.urlopen(request) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        return self._request(path)

    def post(self, path: str, body: Any) -> Any:
        return self._request(path, body)

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


@dataclass
class Therapist:
    agent: Agent
    username: str
    name: str
    password: str
    totp: pyotp.TOTP


def enrol_therapist(
    origin: str, setup_link: str, username: str = "ada", name: str = "Dr. Ada Example"
) -> Therapist:
    """Create an account from a setup link and enrol it. Enrolment uses the previous step's code, so
    the current step stays free for a sign-in right after (a code is accepted once)."""
    agent = Agent(origin)
    token = setup_link.split("#t=", 1)[1]
    agent.post("/api/setup", {"token": token, "name": name, "username": username, "password": PASSWORD})
    details = agent.get("/api/enrol")
    agent.csrf = details["csrf"]
    totp = pyotp.TOTP(details["secret"])
    agent.post("/api/enrol", {"code": totp.at(time.time() - 30)})
    agent.csrf = agent.get("/api/me")["csrf"]
    return Therapist(agent, username, name, PASSWORD, totp)


def schedule(therapist: Therapist, seats: int, title: str = "Session") -> tuple[str, list[str]]:
    """A session starting now; returns its id and one client link per seat."""
    created = therapist.agent.post(
        "/api/sessions",
        {"title": title, "starts_at": int(time.time()), "duration_minutes": 60, "seats": seats},
    )
    session = next(s for s in therapist.agent.get("/api/sessions")["sessions"] if s["id"] == created["id"])
    return created["id"], [seat["link"] for seat in session["seats"]]


def client_waits(origin: str, link: str, name: str) -> Agent:
    agent = Agent(origin)
    session_id = link.split("/j/", 1)[1].split("#", 1)[0]
    agent.post(f"/api/join/{session_id}/redeem", {"token": link.split("#t=", 1)[1]})
    # The server seats nobody who has not acknowledged the privacy notice, as the page has them do.
    notice = agent.get(f"/api/join/{session_id}/notice")
    agent.post(f"/api/join/{session_id}/notice", {"version": notice["version"], "sha256": notice["sha256"]})
    agent.post(f"/api/join/{session_id}/wait", {"name": name})
    return agent


def admit(therapist: Therapist, session_id: str, seat: int) -> None:
    therapist.agent.post(f"/api/sessions/{session_id}/seats/{seat}/admit", {})


def admitted_clients(origin: str, therapist: Therapist, session_id: str, links: list[str]) -> list[Agent]:
    clients = []
    for seat, link in enumerate(links, start=1):
        clients.append(client_waits(origin, link, f"Client {seat}"))
        admit(therapist, session_id, seat)
    return clients
