"""The clock, which TOTP codes depend on: kernel sync state, and the offset from a time source."""

from __future__ import annotations

import asyncio
import ctypes
import email.utils
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from vsession.doctor.findings import Finding, ok, problem, warn
from vsession.doctor.net import resolve

SYNC = "clock sync"
OFFSET = "clock offset"
# The server takes the current and the previous 30-second code (vsession/auth/totp.py). A server behind
# the phone refuses a fresh code for as many seconds as it lags; ahead, it leaves less time to type.
WARN_SECONDS = 2.0
PROBLEM_SECONDS = 10.0
NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP's era 0) to 1970
NTP_PORT = 123
TIME_ERROR = 5  # adjtimex's clock state when the kernel clock is not synchronised
STA_UNSYNC = 0x0040
SYNC_FIX = (
    "run an NTP client (`apt install systemd-timesyncd` or chrony) so the kernel clock stays synchronised"
)


@dataclass(frozen=True)
class KernelClock:
    state: int  # adjtimex's return value
    status: int  # timex.status flags
    maxerror_us: int


class _Timex(ctypes.Structure):
    # struct timex (man 2 adjtimex); the tail of reserved ints keeps the kernel's writes inside it.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_long * 32),
    ]


def read_kernel_clock() -> KernelClock | None:
    """What `timedatectl`'s "System clock synchronized" reads: adjtimex with no changes (no privilege
    needed). None where there is no adjtimex (not Linux)."""
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    timex = _Timex()
    state = adjtimex(ctypes.byref(timex))
    if state < 0:
        return None
    return KernelClock(state, timex.status, timex.maxerror)


def check_clock_sync(kernel: KernelClock | None) -> Finding:
    if kernel is None:
        return warn(SYNC, "could not ask the kernel whether its clock is synchronised", SYNC_FIX)
    if kernel.state == TIME_ERROR or kernel.status & STA_UNSYNC:
        return warn(SYNC, "the kernel clock is not synchronised (no NTP client is steering it)", SYNC_FIX)
    return ok(SYNC, f"the kernel clock is synchronised (max error {kernel.maxerror_us / 1000:.0f} ms)")


def judge_offset(offset: float, source: str) -> Finding:
    """`offset`: the source's time minus ours, in seconds."""
    side = "behind" if offset > 0 else "ahead of"
    found = f"this server is {abs(offset):.1f} s {side} {source}"
    if abs(offset) <= WARN_SECONDS:
        return ok(OFFSET, found)
    effect = (
        f"fresh authenticator codes are refused for their first {min(abs(offset), 30):.0f} s"
        if offset > 0
        else f"codes expire {min(abs(offset), 30):.0f} s early"
    )
    found = f"{found}: {effect}"
    if abs(offset) <= PROBLEM_SECONDS:
        return warn(OFFSET, found, SYNC_FIX)
    return problem(
        OFFSET, found, f"{SYNC_FIX}; set it now with `chronyc makestep` or `timedatectl set-ntp true`"
    )


async def check_clock_offset(
    ntp_server: str, time_url: str, within: float = 3.0, context: ssl.SSLContext | None = None
) -> Finding:
    """Ask `ntp_server` (HOST or HOST:PORT), else the Date header of `time_url`; each `within` seconds."""
    tried: list[str] = []
    if ntp_server:
        host, port = _host_port(ntp_server, NTP_PORT)
        try:
            async with asyncio.timeout(within):
                offset = await ntp_offset(host, port)
        except (OSError, TimeoutError, ValueError) as exc:
            tried.append(f"NTP {ntp_server}: {_reason(exc, within)}")
        else:
            return judge_offset(offset, f"NTP {ntp_server}")
    if time_url:
        try:
            async with asyncio.timeout(within):
                offset = await date_offset(time_url, context)
        except (OSError, TimeoutError, ValueError) as exc:
            tried.append(f"{time_url}: {_reason(exc, within)}")
        else:
            return judge_offset(offset, f"the Date of {time_url} (to the second)")
    why = "; ".join(tried) if tried else "no --ntp-server or --time-url to compare with"
    return warn(
        OFFSET,
        f"could not be checked ({why})",
        "compare with a reachable source: --ntp-server HOST, or --time-url https://a-site-you-trust/",
    )


async def ntp_offset(host: str, port: int) -> float:
    """One SNTP exchange (RFC 4330): the server's time minus ours, from the four timestamps."""
    family, address = await resolve(host, port, socket.SOCK_DGRAM)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[tuple[bytes, float]] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not answer.done():
                answer.set_result((data, time.time()))

        def error_received(self, exc: Exception) -> None:
            if not answer.done():
                answer.set_exception(exc)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=address[:2], family=family)
    try:
        sent = time.time()
        # The transmit timestamp is random, not our time: the server echoes it, which ties its answer
        # to this request without telling it our clock.
        cookie = os.urandom(8)
        transport.sendto(b"\x23" + bytes(39) + cookie)  # LI 0, version 4, mode 3 (client)
        data, received = await answer
    finally:
        transport.close()
    return parse_ntp(data, cookie, sent, received)


def parse_ntp(data: bytes, cookie: bytes, sent: float, received: float) -> float:
    if len(data) < 48:
        raise ValueError("a short answer")
    leap, mode, stratum = data[0] >> 6, data[0] & 7, data[1]
    if mode != 4 or data[24:32] != cookie:
        raise ValueError("an answer to some other request")
    if stratum == 0 or leap == 3:
        raise ValueError("the server says it is not synchronised itself")
    server_received, server_sent = _ntp_time(data[32:40]), _ntp_time(data[40:48])
    return ((server_received - sent) + (server_sent - received)) / 2


def _ntp_time(field: bytes) -> float:
    seconds, fraction = struct.unpack("!II", field)
    return seconds - NTP_EPOCH + fraction / 2**32


async def date_offset(url: str, context: ssl.SSLContext | None = None) -> float:
    """The Date header of a HEAD request (whole seconds: good enough for 30-second codes)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("give an https:// URL")
    port = parts.port or 443
    _, address = await resolve(parts.hostname, port, socket.SOCK_STREAM)
    reader, writer = await asyncio.open_connection(
        address[0], port, ssl=context or ssl.create_default_context(), server_hostname=parts.hostname
    )
    try:
        sent = time.time()
        path = parts.path or "/"
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise ValueError("it gave no complete HTTP header") from None
        received = time.time()
    finally:
        writer.close()
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "date":
            stamp = email.utils.parsedate_to_datetime(value.strip()).timestamp()
            # The server stamped it somewhere between sending and receiving; the Date truncates to the second.
            return stamp + 0.5 - (sent + received) / 2
    raise ValueError("its answer has no Date header")


def _host_port(text: str, default: int) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and (not host.count(":") or host.startswith("[")):
        return host.strip("[]"), int(port)
    return text.strip("[]"), default


def _reason(exc: BaseException, within: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {within:g} s"
    return str(exc) or type(exc).__name__
