"""What /metrics shows, read from the live server at scrape time (on the event loop's thread, the
one that changes this state, so nothing needs a lock)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator

from aiohttp import web
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from vsession.appkeys import SERVICES
from vsession.auth import throttle
from vsession.auth.login import STEPS
from vsession.looplag import BUCKETS_MS, LOOP_LAG, LoopLagMonitor
from vsession.recording.service import Recordings
from vsession.sfu.passthrough import Forwarded
from vsession.sfu.room import SFU

# Label values are fixed words: a series per word, shown at 0 before anything happens.
SEGMENT_STATES = ("complete", "failed")
THROTTLE_REASONS = ("address", "locked", "slow_down")


class ServerCollector:
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        services = self._app[SERVICES]
        yield from calls(services.sfu)
        yield from recordings(services.recordings)
        forwarded = getattr(services.sfu.forwarder, "forwarded", None)
        if isinstance(forwarded, Forwarded):  # the decoding relay counts nothing
            yield from forwarding(forwarded)
        yield from loop(self._app[LOOP_LAG])
        yield from sign_ins(throttle.COUNTS)


def calls(sfu: SFU) -> Iterator[Metric]:
    live = [room for room in sfu.rooms.values() if room.members]
    yield GaugeMetricFamily("vsession_calls", "Calls with at least one participant connected", len(live))
    yield GaugeMetricFamily(
        "vsession_participants",
        "Participants connected to calls' media (waiting-room clients not included)",
        sum(len(room.members) for room in live),
    )


def recordings(service: Recordings) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "vsession_recording_segments_writing", "Recording segments being written now", len(service.live)
    )
    ended = CounterMetricFamily(
        "vsession_recording_segments_ended",
        "Recording segments ended since start, by final state",
        labels=["state"],
    )
    for state in _words(SEGMENT_STATES, service.ended):
        ended.add_metric([state], service.ended[state])
    yield ended


def forwarding(forwarded: Forwarded) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "vsession_forwarded_packets",
        "Media handed to subscribers: encoded frames (relay passthrough) or RTP packets (relay rtp)",
        forwarded.packets,
    )
    yield CounterMetricFamily(
        "vsession_forwarded_bytes",
        "Media payload bytes handed to subscribers (before RTP and SRTP overhead)",
        forwarded.bytes,
    )


def loop(monitor: LoopLagMonitor) -> Iterator[Metric]:
    cumulative, buckets = 0, []
    for bound, count in zip((*BUCKETS_MS, float("inf")), monitor.bucket_counts, strict=True):
        cumulative += count
        buckets.append((floatToGoString(bound / 1000), float(cumulative)))
    yield HistogramMetricFamily(
        "vsession_event_loop_lag_seconds",
        "How late a 100 ms timer on the event loop wakes, since start",
        buckets=buckets,
        sum_value=monitor.sum_ms / 1000,
    )
    recent = monitor.figures()
    yield GaugeMetricFamily(
        "vsession_event_loop_lag_p99_seconds",
        f"99th percentile of the event loop's lag over the last {monitor.log_seconds:g} s",
        recent.p99_ms / 1000,
    )
    yield GaugeMetricFamily(
        "vsession_event_loop_lag_max_seconds",
        f"Largest event loop lag over the last {monitor.log_seconds:g} s",
        recent.max_ms / 1000,
    )
    # A leak (a task per call or message never ended) shows as a count that only grows.
    yield GaugeMetricFamily(
        "vsession_event_loop_tasks", "Tasks alive on the event loop", len(asyncio.all_tasks())
    )


def sign_ins(counts: throttle.SignInCounts) -> Iterator[Metric]:
    failures = CounterMetricFamily(
        "vsession_signin_failures",
        "Failed sign-in steps since start (a wrong password, TOTP code or recovery code)",
        labels=["step"],
    )
    for step in _words(STEPS.values(), counts.failures):
        failures.add_metric([step], counts.failures[step])
    yield failures
    yield CounterMetricFamily(
        "vsession_signin_lockouts", "Accounts locked after too many failures, since start", counts.lockouts
    )
    throttled = CounterMetricFamily(
        "vsession_signin_throttled",
        "Sign-in attempts refused unheard by the throttle since start, by reason",
        labels=["reason"],
    )
    for reason in _words(THROTTLE_REASONS, counts.throttled):
        throttled.add_metric([reason], counts.throttled[reason])
    yield throttled


def _words(known: Iterable[str], seen: Counter[str]) -> list[str]:
    return sorted({*known, *seen})
