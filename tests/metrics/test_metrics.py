"""/metrics on its own address (`metrics_bind`): read during a real call through a live server (two
aiortc peers and a recording with consent), sign-in failures and a lockout counted, never on the
public port, off by default, and not one name, id or address anywhere in what it shows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiortc import AudioStreamTrack
from prometheus_client.parser import text_string_to_metric_families

from tests.support.actors import PASSWORD, Agent, admit, client_waits, enrol_therapist, schedule
from tests.support.call_client import CallClient
from tests.support.call_server import Call, start_call_server
from tests.support.consent_calls import record_with_consent
from tests.support.inprocess import free_port
from tests.support.live_server import LiveServer, start_server
from tests.support.looplag import samples_after
from tests.support.media import ColourTrack
from tests.support.paths import REPO
from tests.support.practice_key import make_key
from vsession.config import load_settings
from vsession.looplag import LoopLagMonitor
from vsession.metrics import collector

USERNAME, THERAPIST, CLIENT, TITLE = "quimbyz", "Dr. Quimby Zanzibar", "Yolanda Vexley", "Yellowhammer"
# Every label a metric may carry, and the words it may hold ("le" holds a histogram's bounds).
LABEL_WORDS = {
    "step": {"password", "totp", "recovery", "step_up"},
    "reason": {"address", "locked", "slow_down"},
    "state": {"complete", "failed"},
}


@dataclass
class Scrape:
    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    labels: list[dict[str, str]]

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no {name}{labels} in:\n{self.text}"
        return self.samples[key]


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples, labels = {}, []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
            labels.append(sample.labels)
    return Scrape(text, samples, labels)


def nothing_personal(seen: Scrape, *secrets: str) -> None:
    for labels in seen.labels:
        for key, value in labels.items():
            if key == "le":
                float(value)  # a bucket bound ("+Inf" included), nothing else
            else:
                assert value in LABEL_WORDS.get(key, set()), (key, value)
    for secret in (*secrets, "127.0.0.1"):
        assert secret not in seen.text, secret


def status(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers or {}), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def metrics_server(tmp_path: Path, *settings: str) -> tuple[LiveServer, str]:
    bind = f"127.0.0.1:{free_port()}"
    return start_call_server(tmp_path, f'metrics_bind = "{bind}"', *settings), f"http://{bind}/metrics"


async def scrape_until(url: str, condition: Callable[[Scrape], bool], patience: float = 20) -> Scrape:
    """Scrape until `condition` holds; the limit only stops a broken run from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        seen = await asyncio.to_thread(scrape, url)
        if condition(seen):
            return seen
        if loop.time() > deadline:
            raise AssertionError(f"never held; last scrape:\n{seen.text}")
        await asyncio.sleep(0.2)


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    _, recipient = make_key(tmp_path)
    server, url = metrics_server(tmp_path, f'recording_recipient = "{recipient}"')
    yield server, url
    server.stop()


def named_call(server: LiveServer) -> Call:
    therapist = enrol_therapist(server.url, server.setup_link(), username=USERNAME, name=THERAPIST)
    session_id, links = schedule(therapist, 1, title=TITLE)
    client = client_waits(server.url, links[0], CLIENT)
    admit(therapist, session_id, 1)
    return Call(server, therapist, session_id, [client])


async def test_a_call_shows_in_the_metrics_without_names_ids_or_addresses(recording_server) -> None:
    server, url = recording_server
    call = await asyncio.to_thread(named_call, server)
    t_media = {"camera": ColourTrack((220, 40, 40)), "microphone": AudioStreamTrack()}
    s_media = {"camera": ColourTrack((40, 200, 40)), "microphone": AudioStreamTrack()}
    peers = {"t": CallClient(*call.therapist_ws(), t_media), "s1": CallClient(*call.client_ws(0), s_media)}
    scrapes: list[Scrape] = []
    try:
        for peer in peers.values():
            await peer.join()
        for pid, peer in peers.items():
            other = "s1" if pid == "t" else "t"
            await peer.wait_for(lambda p=peer, o=other: p.frames[(o, "camera")] >= 10, patience=45)

        first = await asyncio.to_thread(scrape, url)
        scrapes.append(first)
        assert first.value("vsession_calls") == 1
        assert first.value("vsession_participants") == 2
        assert first.value("vsession_recording_segments_writing") == 0
        samples = first.value("vsession_event_loop_lag_seconds_count")
        assert samples > 0
        assert first.value("vsession_event_loop_lag_seconds_bucket", le="+Inf") == samples
        assert first.value("vsession_event_loop_lag_max_seconds") >= first.value(
            "vsession_event_loop_lag_p99_seconds"
        )
        assert first.value("vsession_forwarded_packets_total") > 0

        # Media keeps flowing, so the forwarded totals keep rising.
        packets, sent = (
            first.value("vsession_forwarded_packets_total"),
            first.value("vsession_forwarded_bytes_total"),
        )
        scrapes.append(
            await scrape_until(
                url,
                lambda s: (
                    s.value("vsession_forwarded_packets_total") > packets
                    and s.value("vsession_forwarded_bytes_total") > sent
                ),
            )
        )

        await record_with_consent(peers["t"], peers["s1"])
        scrapes.append(await scrape_until(url, lambda s: s.value("vsession_recording_segments_writing") == 1))
        await peers["t"].send({"type": "record", "action": "stop"})
        scrapes.append(
            await scrape_until(
                url,
                lambda s: (
                    s.value("vsession_recording_segments_writing") == 0
                    and s.value("vsession_recording_segments_ended_total", state="complete") == 1
                ),
            )
        )
    finally:
        for peer in peers.values():
            await peer.close()
    scrapes.append(await scrape_until(url, lambda s: s.value("vsession_participants") == 0))
    assert scrapes[-1].value("vsession_calls") == 0

    for seen in scrapes:
        nothing_personal(seen, call.session_id, USERNAME, "Quimby", "Zanzibar", "Yolanda", "Vexley", TITLE)
    assert undocumented(scrapes) == set(), "add these to docs/deploy.md's metrics table"


def undocumented(scrapes: list[Scrape]) -> set[str]:
    """vsession's own metric names, as the practice's admin reads them in docs/deploy.md."""
    names = {
        re.sub(r"_(bucket|count|sum|created)$", "", name) for seen in scrapes for name, _ in seen.samples
    }
    documented = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    return {
        name for name in names if name.startswith("vsession_") and not re.search(rf"`{name}[`{{]", documented)
    }


def test_sign_in_failures_and_a_lockout_are_counted(tmp_path: Path) -> None:
    server, url = metrics_server(tmp_path, "lockout_threshold = 3")
    try:
        therapist = enrol_therapist(server.url, server.setup_link(), username=USERNAME, name=THERAPIST)
        before = scrape(url)
        assert before.value("vsession_signin_failures_total", step="password") == 0
        assert before.value("vsession_signin_lockouts_total") == 0

        # A right password, then a wrong code: a second-factor failure (the account stays open).
        agent = Agent(server.url)
        agent.post("/api/login", {"username": USERNAME, "password": PASSWORD})
        with pytest.raises(urllib.error.HTTPError) as refused:
            agent.post("/api/login/code", {"code": "000000", "kind": "totp"})
        assert refused.value.code == 401
        # A name nobody has: three wrong passwords lock it, and the next try is refused unheard.
        guesser = Agent(server.url)
        codes = []
        for _ in range(4):
            with pytest.raises(urllib.error.HTTPError) as refused:
                guesser.post("/api/login", {"username": "mallory-xq", "password": "hunter2-zz"})
            codes.append(refused.value.code)
        assert codes == [401, 401, 401, 429]

        after = scrape(url)
        assert after.value("vsession_signin_failures_total", step="password") == 3
        assert after.value("vsession_signin_failures_total", step="totp") == 1
        assert after.value("vsession_signin_lockouts_total") == 1
        assert after.value("vsession_signin_throttled_total", reason="locked") == 1
        nothing_personal(after, USERNAME, "Quimby", "mallory", "hunter2", therapist.password)

        # The metrics site serves /metrics only, and the public site never serves it.
        assert status(server.url + "/metrics") == 404
        assert status(url.removesuffix("/metrics") + "/healthz") == 404
        assert status(server.url + "/healthz") == 200
    finally:
        server.stop()


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a file closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_metrics_are_off_by_default_and_never_on_the_public_port(live_server) -> None:
    assert load_settings(environ={}).metrics_address is None
    assert status(live_server.url + "/metrics") == 404
    port = int(live_server.url.rsplit(":", 1)[1])
    assert listening_tcp_ports(live_server.process.pid) == {port}


def test_the_metrics_address_cannot_be_the_public_one(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "vsession.toml"
    config.write_text(f'metrics_bind = "127.0.0.1:{port}"\n')
    with pytest.raises(RuntimeError, match=r"exited with 2"):
        start_server(tmp_path / "data", "--port", str(port), "--config", str(config))


async def test_a_blocked_loop_shows_in_the_lag_histogram() -> None:
    monitor = LoopLagMonitor(interval=0.01, log_seconds=60)
    monitor.start()
    try:
        await samples_after(monitor, 3)
        time.sleep(0.06)  # noqa: ASYNC251 -- on purpose: what a stray fsync or hash would do
        await samples_after(monitor, 2)
    finally:
        await monitor.stop()
    families = {family.name: family for family in collector.loop(monitor)}
    buckets = {
        s.labels["le"]: s.value
        for s in families["vsession_event_loop_lag_seconds"].samples
        if "le" in s.labels
    }
    assert buckets["+Inf"] == monitor.samples_taken
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    # The blocked sample waited at least 50 ms past its 10 ms timer.
    assert buckets["0.05"] < buckets["+Inf"]
    assert families["vsession_event_loop_lag_max_seconds"].samples[0].value >= 0.05


def test_the_decoding_relay_shows_no_forwarding_counts_rather_than_zeros(tmp_path: Path) -> None:
    server, url = metrics_server(tmp_path, 'relay = "decoding"')
    try:
        seen = scrape(url)
    finally:
        server.stop()
    assert seen.value("vsession_calls") == 0
    assert "vsession_forwarded" not in seen.text
