"""The benchmark's tables and verdicts, from the steps' results: load, light-load frames, delay
(video and audio, added = through the server - direct), the vsession : Janus comparison, CPU
ratios, and capacity by issue 6's criterion as written."""

from __future__ import annotations

from collections.abc import Sequence

from bench_common import mean
from bench_delay import added, percentile
from bench_sampling import CORES
from bench_step import CPU_CEILING, FPS_FLOOR, StepResult
from bench_targets import JANUS


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """Right-aligned columns under two header lines; the first column is left-aligned."""
    widths = [max(len(h1), len(h2), *(len(r[i]) for r in rows)) for i, (h1, h2) in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    return "\n".join([line([h[0] for h in headers]), line([h[1] for h in headers]), *map(line, rows)])


def load_table(results: list[StepResult]) -> str:
    headers = [
        ("relay", ""),
        ("N", ""),
        ("server", "cores"),
        ("server CPU", "/session"),
        ("RSS/session", "MiB"),
        ("fps", "min"),
        ("fps", "mean"),
        ("audio/s", "mean"),
        ("video sent", "Mbps/sender"),
        ("received", "Mbps/recv"),
        ("participants", "cores"),
        ("machine", f"cores/{CORES}"),
        ("other", "cores"),
        (f">={FPS_FLOOR:g}fps &", f"<{CPU_CEILING}core"),
    ]
    rows = [
        [
            r.relay,
            str(r.sessions),
            fmt(r.server_cores),
            fmt(r.cpu_per_session, 3),
            fmt(r.rss_per_session_mib, 1),
            fmt(r.fps_min, 1),
            fmt(mean(r.fps), 1),
            fmt(mean(r.audio_pps), 1),
            fmt(mean(r.sent_mbps)),
            fmt(mean(r.received_mbps)),
            fmt(r.load_cores),
            fmt(r.machine_cores),
            fmt(r.other_cores),
            "pass" if r.passes else "FAIL",
        ]
        for r in results
    ]
    return table(headers, rows)


def light_table(results: list[StepResult]) -> str:
    """What the light load's receivers got, counted from the encoded frames, and what it cost."""
    headers = [
        ("relay", ""),
        ("N", ""),
        ("frames/s", "min"),
        ("keyframes", "/recv"),
        ("delta frames", "/recv"),
        ("video in", "Mbps/recv"),
        ("video sent", "Mbps/sender"),
        ("PLI/FIR", "/sender"),
        ("bad", "frames"),
        ("participants", "processes"),
        ("participant", "cores/proc"),
    ]
    rows = []
    for r in results:
        if r.load != "light":
            continue
        frames = [f * r.seconds for f in r.fps]
        deltas = [f - k for f, k in zip(frames, r.keyframes, strict=False)]
        rows.append(
            [
                r.relay,
                str(r.sessions),
                fmt(r.fps_min, 1),
                fmt(mean([float(k) for k in r.keyframes]), 1),
                fmt(mean(deltas), 0),
                fmt(mean(r.frame_mbps)),
                fmt(mean(r.sent_mbps)),
                fmt(mean([float(k) for k in r.keyframe_requests]), 1),
                str(r.bad_frames),
                str(r.processes),
                fmt(r.cores_per_process, 3),
            ]
        )
    return table(headers, rows)


def latency_table(results: list[StepResult]) -> str:
    headers = [
        ("relay", ""),
        ("N", ""),
        ("server p50", "ms"),
        ("server p95", "ms"),
        ("direct p50", "ms"),
        ("direct p95", "ms"),
        ("added p50", "ms"),
        ("added p95", "ms"),
        ("audio added", "p50 ms"),
        ("audio added", "p95 ms"),
        ("direct fps", "min"),
        ("stamps", "read"),
    ]
    rows = []
    for r in results:
        through = [percentile(r.latency, q) for q in (0.5, 0.95)]
        direct = [percentile(r.direct_latency, q) for q in (0.5, 0.95)]
        video = [added(r.latency, r.direct_latency, q) for q in (0.5, 0.95)]
        audio = [added(r.audio_latency, r.direct_audio_latency, q) for q in (0.5, 0.95)]
        read = f"{100 * r.stamps_read / r.stamps_seen:.1f}%" if r.stamps_seen else "-"
        rows.append(
            [
                r.relay,
                str(r.sessions),
                *(fmt(v, 1) for v in (*through, *direct, *video, *audio)),
                fmt(min(r.direct_fps, default=None), 1),
                read,
            ]
        )
    return table(headers, rows)


def comparison_table(results: list[StepResult]) -> str:
    """vsession against Janus, step by step: the figures issue 14 asks for, side by side."""
    headers = [
        ("server", ""),
        ("N", ""),
        ("cores", "/session"),
        ("RSS", "MiB"),
        ("RSS", "MiB/session"),
        ("fps", "min"),
        ("fps", "mean"),
        ("video added", "p50 ms"),
        ("video added", "p95 ms"),
        ("audio added", "p50 ms"),
        ("audio added", "p95 ms"),
        ("criterion", ""),
    ]
    rows = [
        [
            r.relay if r.relay == JANUS else f"vsession {r.relay}",
            str(r.sessions),
            fmt(r.cpu_per_session, 3),
            fmt(r.rss_during / 2**20, 0),
            fmt(r.rss_per_session_mib, 2),
            fmt(r.fps_min, 1),
            fmt(mean(r.fps), 1),
            *(fmt(added(r.latency, r.direct_latency, q), 1) for q in (0.5, 0.95)),
            *(fmt(added(r.audio_latency, r.direct_audio_latency, q), 1) for q in (0.5, 0.95)),
            "pass" if r.passes else "FAIL: " + "; ".join(r.failures()),
        ]
        for r in sorted(results, key=lambda r: (r.sessions, r.relay == JANUS))
    ]
    return table(headers, rows)


def janus_ratio_lines(results: list[StepResult]) -> list[str]:
    """CPU and memory per session of each vsession relay against Janus at the same N, same run."""
    janus = {r.sessions: r for r in results if r.relay == JANUS}
    lines = []
    for r in results:
        j = janus.get(r.sessions)
        if r.relay == JANUS or j is None or j.cpu_per_session <= 0:
            continue
        lines.append(
            f"  {r.relay} : janus at N={r.sessions}: CPU {r.cpu_per_session / j.cpu_per_session:.2f}x, "
            f"RSS/session {r.rss_per_session_mib - j.rss_per_session_mib:+.2f} MiB{caveat(r, j)}"
        )
    header = "vsession against Janus at the same N (same run; issue 14's goals: CPU <= 1.0x, RSS <= +2 MiB):"
    return [header, *lines] if lines else []


def caveat(*steps: StepResult) -> str:
    """A ratio involving a step whose receivers fell behind compares a server that forwarded less
    than the full load: say so next to the number."""
    behind = [f"{s.relay} N={s.sessions} (fps mean {mean(s.fps) or 0:.1f})" for s in steps if s.fell_behind]
    short = [f"{s.relay} N={s.sessions} (fps min {s.fps_min:.1f})" for s in steps if s.fps_min < FPS_FLOOR]
    if behind:
        return f"  [not comparable: {', '.join(behind)} fell behind, its server forwarded less than the load]"
    if short:
        return f"  [{', '.join(short)} below {FPS_FLOOR:g} fps at some receiver]"
    return ""


def ratio_lines(results: list[StepResult]) -> list[str]:
    return scaling_lines(results) + relay_ratio_lines(results) + janus_ratio_lines(results)


def scaling_lines(results: list[StepResult]) -> list[str]:
    """CPU per session at each N against the same relay's smallest N (N=1 unless not run)."""
    lines = []
    for relay in dict.fromkeys(r.relay for r in results):
        steps = sorted((r for r in results if r.relay == relay), key=lambda r: r.sessions)
        base = steps[0]
        for r in steps[1:]:
            if base.cpu_per_session > 0:
                ratio = r.cpu_per_session / base.cpu_per_session
                names = f"{relay}(N={r.sessions})/{relay}(N={base.sessions})"
                lines.append(f"  ratio {names}: {ratio:.2f}{caveat(r, base)}")
    header = "Server CPU per session against the same relay at its smallest N (the in-run baseline):"
    return [header, *lines] if lines else []


def relay_ratio_lines(results: list[StepResult]) -> list[str]:
    by_key = {(r.relay, r.sessions): r for r in results}
    common = sorted(n for relay, n in by_key if relay == "passthrough" and ("decoding", n) in by_key)
    lines = []
    for n in common:
        pt, dec = by_key[("passthrough", n)], by_key[("decoding", n)]
        if pt.cpu_per_session > 0 and dec.cpu_per_session > 0:
            lines.append(
                f"  passthrough : decoding at N={n}: {pt.cpu_per_session / dec.cpu_per_session:.3f} : 1 "
                f"(decoding costs {dec.cpu_per_session / pt.cpu_per_session:.1f}x as much){caveat(pt, dec)}"
            )
    header = "Server CPU per session, passthrough : decoding (same N, same run):"
    return [header, *lines] if lines else []


def capacity(steps: list[StepResult]) -> tuple[StepResult | None, StepResult | None]:
    """(the largest passing step below the first failing one, that failing one). A pass at a
    larger N after a failure does not count: capacity is where the criterion first fails."""
    best = None
    for step in sorted(steps, key=lambda r: r.sessions):
        if not step.passes:
            return best, step
        best = step
    return best, None


def capacity_lines(relays: list[str], results: list[StepResult], max_sessions: int | None) -> list[str]:
    """Capacity by the criterion as written, from the measured steps only: no projection, and a
    step over the CPU ceiling or under the fps floor fails whatever else it shows."""
    lines = [
        f"Capacity: largest N with every receiver >= {FPS_FLOOR:g} fps and the server < {CPU_CEILING} "
        "of a core, at that N and every smaller N measured (N / server cores there = sessions per core):"
    ]
    largest: dict[str, int] = {}
    for relay in relays:
        steps = [r for r in results if r.relay == relay]
        if not steps:
            continue
        best, failed = capacity(steps)
        largest[relay] = best.sessions if best else 0
        text = f"  {relay:<12} largest N = {largest[relay]}"
        if best is not None and best.server_cores > 0:
            per_core = best.sessions / best.server_cores
            text += f" (server {best.server_cores:.2f} cores there: {per_core:.1f} sessions per core)"
        if failed is not None:
            text += f"; N={failed.sessions} failed: {failed.limit()}"
            if failed.limited_by() in ("load generator", "other work"):
                text += "; the machine ran out first, so this is a lower bound for the server"
        elif max_sessions is not None:
            text += f"; reached --max-sessions {max_sessions} without failing"
        else:
            text += f"; passed every N measured (up to {max(r.sessions for r in steps)}): a lower bound"
        lines.append(text)
    if "passthrough" in largest and "decoding" in largest:
        lines.append(f"  passthrough : decoding largest N: {largest['passthrough']} : {largest['decoding']}")
    return lines
