"""`vsession doctor`: one line per check, OK, WARN or PROBLEM, each problem with its fix.
Exit 0 when nothing is a PROBLEM, 1 otherwise, 2 when the settings do not load."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vsession.config import ENV_PREFIX, ConfigError, Settings
from vsession.doctor import certificate, clock, disk, keys, media_ports, turn
from vsession.doctor.findings import Finding, Level, ok, problem

DEFAULT_NTP = "pool.ntp.org"
Check = Callable[[], Finding | Awaitable[Finding]]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Adds the subcommand to `vsession`'s parser; `common` carries --config/--data-dir/--host/--port."""
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check this deployment; each problem comes with its fix"
    )
    doctor.add_argument(
        "--ntp-server",
        default=DEFAULT_NTP,
        metavar="HOST[:PORT]",
        help=f'NTP server to compare the clock with (default {DEFAULT_NTP}; "" for none)',
    )
    doctor.add_argument(
        "--time-url", default="", metavar="URL", help="https:// address whose Date header is the fallback"
    )
    # Settings are loaded by the command itself: a bad one is a PROBLEM line, not a usage error.
    doctor.set_defaults(run=cmd_doctor, settings_free=True)


def cmd_doctor(args: argparse.Namespace) -> int:
    from vsession.cli import settings_from  # vsession.cli imports this module

    try:
        settings = settings_from(args)
    except ConfigError as exc:
        report(problem("settings", str(exc), settings_fix(exc.name, args.config)))
        return 2
    data, key_folder = settings.data_dir.absolute(), settings.key_folder.absolute()
    report(ok("settings", f"loaded; data_dir {data}, keys in {key_folder}"))
    # Where an identity file is likely to be left: beside the data, the keys, the settings and the admin.
    roots = [settings.data_dir, settings.key_folder, Path.cwd()]
    if args.config is not None:
        roots.append(args.config.absolute().parent)
    findings = asyncio.run(run_checks(settings, roots, args.ntp_server, args.time_url, report))
    return 1 if any(f.level is Level.PROBLEM for f in findings) else 0


def settings_fix(name: str, config_file: Path | None) -> str:
    refused = "; `vsession serve` refuses to start until then"
    if name == "config":
        return f"check the --config path and its TOML syntax{refused}"
    if name.startswith(ENV_PREFIX):
        return f"remove or rename the environment variable {name}{refused}"
    where = f"in {config_file}, " if config_file else ""
    return f"correct '{name}' {where}in {ENV_PREFIX}{name.upper()} or in its flag, whichever sets it{refused}"


def report(finding: Finding) -> None:
    print(finding.line(), flush=True)


async def run_checks(
    settings: Settings,
    roots: list[Path],
    ntp_server: str,
    time_url: str,
    show: Callable[[Finding], None],
) -> list[Finding]:
    now = datetime.datetime.now(datetime.UTC)
    recipients = [r.strip() for r in (settings.recording_recipient, settings.breakglass_recipient) if r]

    def ports() -> Finding:
        running = media_ports.server_running(settings)
        addresses = media_ports.host_addresses(settings)
        return media_ports.check_media_ports(settings.media_port_range, addresses, running)

    checks: list[tuple[str, Check]] = [
        (certificate.CHECK, lambda: certificate.check_certificate(settings, now)),
        (keys.RECIPIENT, lambda: keys.check_recipient(settings.recording_recipient)),
        (keys.IDENTITIES, lambda: asyncio.to_thread(keys.check_identities, roots, recipients)),
        (disk.CHECK, lambda: disk.check_disk(settings.data_dir, bool(settings.recording_recipient))),
        (media_ports.CHECK, lambda: asyncio.to_thread(ports)),
    ]
    checks += turn_checks(settings)
    checks += [
        (clock.SYNC, lambda: clock.check_clock_sync(clock.read_kernel_clock())),
        (clock.OFFSET, lambda: clock.check_clock_offset(ntp_server, time_url)),
    ]
    findings: list[Finding] = []
    for name, check in checks:
        finding = await _safely(name, check)
        show(finding)
        findings.append(finding)
    return findings


def turn_checks(settings: Settings) -> list[tuple[str, Check]]:
    nothing_to_try = turn.check_turn_config(
        settings.ice_servers, settings.turn_secret, settings.turn_username
    )
    if nothing_to_try is not None:
        return [(turn.CHECK, lambda: nothing_to_try)]
    return [
        (
            turn.CHECK,
            functools.partial(
                turn.check_turn, url, settings.turn_secret, settings.turn_username, settings.turn_password
            ),
        )
        for url in settings.ice_servers
        if url.startswith(("turn:", "turns:"))
    ]


async def _safely(name: str, check: Check) -> Finding:
    """A check that breaks is itself a problem line, never a traceback that hides the other checks."""
    try:
        result = check()
        return result if isinstance(result, Finding) else await result
    except Exception as exc:  # reported as a line, with its type
        return problem(name, f"the check itself failed: {type(exc).__name__}: {exc}", "report this as a bug")
