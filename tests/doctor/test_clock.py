"""The clock checks: a fake NTP server on loopback (tests/doctor/conftest.py) answers with a skewed
time, a local HTTPS server with a skewed Date; the kernel's own sync state is read for real."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from vsession.doctor import clock
from vsession.doctor.findings import Finding, Level

MakeCert = Callable[..., tuple[Path, Path]]
FakeNtp = Callable[..., str]


def offset_from_ntp(fake_ntp: FakeNtp, skew: float, leap: int = 0) -> Finding:
    return asyncio.run(clock.check_clock_offset(fake_ntp(skew, leap), "", within=2.0))


def test_an_ntp_server_agreeing_is_ok(fake_ntp: FakeNtp) -> None:
    finding = offset_from_ntp(fake_ntp, 0.0)
    assert finding.level is Level.OK, finding.line()
    assert "NTP 127.0.0.1:" in finding.found


def test_a_clock_behind_by_20_seconds_is_a_problem(fake_ntp: FakeNtp) -> None:
    finding = offset_from_ntp(fake_ntp, 20.0)
    assert finding.level is Level.PROBLEM
    assert "this server is 20.0 s behind NTP" in finding.found
    assert "fresh authenticator codes are refused for their first 20 s" in finding.found


def test_a_clock_5_seconds_ahead_is_a_warning(fake_ntp: FakeNtp) -> None:
    finding = offset_from_ntp(fake_ntp, -5.0)
    assert finding.level is Level.WARN
    assert "this server is 5.0 s ahead of NTP" in finding.found and "expire 5 s early" in finding.found


def test_an_unsynchronised_ntp_server_is_not_believed(fake_ntp: FakeNtp) -> None:
    finding = offset_from_ntp(fake_ntp, 100.0, leap=3)
    assert finding.level is Level.WARN
    assert "could not be checked" in finding.found and "not synchronised itself" in finding.found


def test_no_ntp_server_answering_is_a_warning_not_a_crash() -> None:
    async def silent() -> Finding:
        # A bound socket that never answers: the check gives up after its time.
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            return await clock.check_clock_offset(f"127.0.0.1:{port}", "", within=0.5)
        finally:
            transport.close()

    finding = asyncio.run(silent())
    assert finding.level is Level.WARN
    assert "could not be checked (NTP 127.0.0.1:" in finding.found
    assert "no answer within 0.5 s" in finding.found


def test_nothing_to_compare_with_is_a_warning() -> None:
    finding = asyncio.run(clock.check_clock_offset("", ""))
    assert finding.level is Level.WARN and "no --ntp-server or --time-url" in finding.found


def test_the_date_of_an_https_server_is_the_fallback(tmp_path: Path, make_cert: MakeCert) -> None:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    cert, key = make_cert("localhost", now - day, now + day, self_signed=True)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    async def handler(request: web.Request) -> web.Response:
        return web.Response(headers={"Date": email.utils.formatdate(time.time() + 40, usegmt=True)})

    async def run() -> Finding:
        app = web.Application()
        app.router.add_route("HEAD", "/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
        await site.start()
        port = runner.addresses[0][1]
        try:
            # No NTP answer (nothing on the port), then the Date header.
            return await clock.check_clock_offset(
                "127.0.0.1:1", f"https://localhost:{port}/", within=2.0, context=client_context
            )
        finally:
            await runner.cleanup()

    finding = asyncio.run(run())
    assert finding.level is Level.PROBLEM, finding.line()
    assert "behind the Date of https://localhost:" in finding.found


def test_kernel_sync_state() -> None:
    # Whatever this machine's kernel says, it is read (Linux), and judged from its flags.
    assert clock.read_kernel_clock() is not None
    synced = clock.check_clock_sync(clock.KernelClock(state=0, status=0x2001, maxerror_us=12_000))
    unsynced = clock.check_clock_sync(clock.KernelClock(state=5, status=0x40, maxerror_us=16_000_000))
    assert synced.level is Level.OK and "max error 12 ms" in synced.found
    assert unsynced.level is Level.WARN and "not synchronised" in unsynced.found
    assert clock.check_clock_sync(None).level is Level.WARN
