"""CPU and memory readings for the benchmarks, from /proc: a process's CPU-seconds (all threads),
its RSS, and the whole machine's busy cores, so a step can tell the server's work from the load
generator's and from work it did not start."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_common import say

CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
MIB = 1024 * 1024
DISTURBED = 0.25  # cores used by other work on the machine before a step is flagged


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / CLK_TCK  # fields 14 and 15 of stat


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(seconds: float) -> float:
    """How many cores the whole machine keeps busy over a short interval."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return CORES * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(tag: str, patience: float) -> None:
    """On a shared machine, give other work a chance to finish before a step starts."""
    deadline = time.monotonic() + patience
    busy = busy_cores(2.0)
    if busy > DISTURBED:
        say(f"{tag} the machine is busy ({busy:.2f} cores) with other work; waiting up to {patience:g} s")
    while busy > DISTURBED and time.monotonic() < deadline:
        busy = busy_cores(2.0)
    if busy > DISTURBED:
        say(f"{tag} still {busy:.2f} cores busy with other work; starting anyway")


@dataclass
class Sample:
    time: float
    server_cpu: float
    load_cpu: float
    machine: tuple[int, int]


def take_sample(server_pid: int, worker_pids: Sequence[int]) -> Sample:
    load = 0.0
    for pid in worker_pids:
        with contextlib.suppress(OSError):  # a worker that died counts from then on as zero
            load += cpu_seconds(pid)
    return Sample(time.monotonic(), cpu_seconds(server_pid), load, machine_ticks())


def sample_window(
    server_pid: int, alive: Callable[[], bool], pids: list[int], seconds: float
) -> tuple[Sample, Sample, list[int]]:
    """The opening and closing samples of a window, and the server's RSS once a second through it."""
    before = take_sample(server_pid, pids)
    rss = []
    deadline = before.time + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        if not alive():
            raise RuntimeError("the server exited during the measurement window")
        rss.append(rss_bytes(server_pid))
    return before, take_sample(server_pid, pids), rss
