"""`vsession` command line: serve, and the admin's tools. Exit 2 on bad settings or usage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from vsession import logs
from vsession.appkeys import SERVICES
from vsession.audit import Checkpoint, head, verify
from vsession.auth import enrolment
from vsession.auth.context import normalise_username
from vsession.backup import cli as backup_cli
from vsession.config import ConfigError, Settings, load_settings
from vsession.doctor import cli as doctor_cli
from vsession.keyfile import read_key
from vsession.recording import age, library
from vsession.recording.recipients import recording_status
from vsession.services import Services, audit_key_path, open_database, open_services
from vsession.store import consent as consent_store
from vsession.store import signins as signin_rows
from vsession.store import therapists

Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML file of settings")
    common.add_argument("--data-dir", help="data folder (VSESSION_DATA_DIR, default ./data)")
    common.add_argument("--host", help="address to bind (VSESSION_HOST, default 127.0.0.1)")
    common.add_argument("--port", help="port, 0 picks a free one (VSESSION_PORT, default 8443)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="vsession", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--tls-cert", help="PEM certificate chain")
    serve.add_argument("--tls-key", help="PEM private key")
    serve.add_argument(
        "--self-signed", action="store_const", const="true", help="make and reuse a self-signed cert"
    )
    serve.add_argument(
        "--recording-recipient",
        metavar="AGE1...",
        help="the practice's age public key; recording is off without it (VSESSION_RECORDING_RECIPIENT)",
    )
    serve.set_defaults(run=cmd_serve)

    audit = commands.add_parser("audit", help="check the audit log").add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    check = audit.add_parser("verify", parents=[common], help="verify the hash chain")
    check.add_argument("--checkpoint", help="SEQ:HASH from an earlier `audit checkpoint`")
    check.set_defaults(run=cmd_audit_verify)
    audit.add_parser("checkpoint", parents=[common], help="print the chain head").set_defaults(
        run=cmd_audit_checkpoint
    )

    link = commands.add_parser(
        "setup-link", parents=[common], help="print a one-time link to create a therapist"
    )
    link.add_argument("--admin", action="store_true", help="the new therapist may invite colleagues")
    link.set_defaults(run=cmd_setup_link)

    keys = commands.add_parser("keys", help="the practice's recording keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    generate = keys.add_parser("generate", help="write an identity file (keep it OFF this server)")
    generate.add_argument("-o", "--output", required=True, type=Path, help="identity file to create")
    generate.set_defaults(run=cmd_keys_generate, settings_free=True)

    recordings = commands.add_parser("recordings", help="encrypted recordings").add_subparsers(
        dest="recordings_command", required=True, metavar="ACTION"
    )
    recordings.add_parser("list", parents=[common], help="list recordings").set_defaults(
        run=cmd_recordings_list
    )
    check = recordings.add_parser("verify", help="say COMPLETE, TRUNCATED or TAMPERED")
    check.add_argument("file", type=Path)
    check.add_argument("-i", "--identity", required=True, type=Path, help="identity file")
    check.set_defaults(run=cmd_recordings_verify, settings_free=True)
    open_file = recordings.add_parser("decrypt", help="decrypt a recording (like `age -d`)")
    open_file.add_argument("file", type=Path)
    open_file.add_argument("-i", "--identity", required=True, type=Path, help="identity file")
    open_file.add_argument("-o", "--output", required=True, type=Path, help="plaintext WebM to create")
    open_file.add_argument(
        "--salvage", action="store_true", help="write the authenticated prefix of a truncated file"
    )
    open_file.set_defaults(run=cmd_recordings_decrypt, settings_free=True)
    remove = recordings.add_parser(
        "delete", parents=[common], help="destroy a recording, with an audit receipt"
    )
    remove.add_argument("recording_id")
    remove.set_defaults(run=cmd_recordings_delete)

    user = commands.add_parser("user", help="manage therapist accounts").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    user.add_parser("list", parents=[common], help="list therapists").set_defaults(run=cmd_user_list)
    for action, run, text in (
        ("disable", cmd_user_disable, "stop an account from signing in and end its sessions"),
        ("enable", cmd_user_enable, "let a disabled account sign in again"),
        ("reset-2fa", cmd_user_reset_2fa, "make the therapist enrol a new authenticator at next sign-in"),
    ):
        sub = user.add_parser(action, parents=[common], help=text)
        sub.add_argument("username")
        sub.set_defaults(run=run)
    backup_cli.add_commands(commands, common)
    doctor_cli.add_commands(commands, common)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "data_dir": args.data_dir,
        "host": args.host,
        "port": args.port,
    }
    for name in ("tls_cert", "tls_key", "self_signed", "recording_recipient"):
        overrides[name] = getattr(args, name, None)
    return load_settings(args.config, overrides=overrides)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from vsession.serve import StartupFailed, serve

    logs.setup(settings.log_level)
    # The admin sees at once whether consent can lead to a recording, and for which key.
    status = recording_status(settings.recording_recipient, settings.breakglass_recipient)
    print(status, flush=True)
    logging.getLogger(__name__).info(status)
    try:
        await serve(settings, on_ready=announce_first_setup)
    except StartupFailed as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    return 0


async def announce_first_setup(app: web.Application, settings: Settings) -> None:
    """First run: nobody can sign in yet, so hand the operator a link to create the first therapist."""
    services = app[SERVICES]
    async with services.db.transaction() as tx:
        if await therapists.count(tx):
            return
    url = await enrolment.create_link(services.auth, None, is_admin=True)
    minutes = settings.setup_link_minutes
    print(f"No therapist account yet. Open this one-time setup link (valid {minutes} minutes):")
    print(url, flush=True)


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        checkpoint = Checkpoint.parse(args.checkpoint) if args.checkpoint else None
    except ValueError as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    try:
        key = read_key(audit_key_path(settings))
    except RuntimeError as exc:
        print(f"vsession: cannot verify the audit log: {exc}", file=sys.stderr)
        return 2
    db = await open_database(settings)
    try:
        result = await verify(db, key, checkpoint)
    finally:
        await db.close()
    if result.ok:
        where = f", head {result.head}" if result.head else ""
        print(f"audit log intact: {result.entries} entries{where}")
        return 0
    print(f"audit log BROKEN at sequence {result.first_bad}: {result.reason}")
    return 1


async def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    services = await open_services(settings)
    try:
        point = await head(services.db)
    finally:
        await services.close()
    print(point if point else Checkpoint(0, "0" * 64))
    return 0


async def cmd_setup_link(args: argparse.Namespace, settings: Settings) -> int:
    services = await open_services(settings)
    try:
        async with services.db.transaction() as tx:
            first = await therapists.count(tx) == 0
        url = await enrolment.create_link(services.auth, None, is_admin=args.admin or first)
    finally:
        await services.close()
    print(f"One-time setup link (valid {settings.setup_link_minutes} minutes, works once):")
    print(url)
    return 0


async def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    services = await open_services(settings)
    try:
        async with services.db.transaction() as tx:
            accounts = await therapists.all_therapists(tx)
    finally:
        await services.close()
    print(f"{'username':<24} {'name':<28} admin  2fa       status")
    for a in accounts:
        status = "disabled" if a.disabled else "active"
        enrolled = "enrolled" if a.totp_enrolled else "pending"
        print(
            f"{a.username:<24} {a.display_name:<28} {'yes' if a.is_admin else 'no':<6} {enrolled:<9} {status}"
        )
    return 0


async def _change_account(args: argparse.Namespace, settings: Settings, change: str) -> int:
    services = await open_services(settings)
    try:
        return await _apply_change(services, args.username, change)
    finally:
        await services.close()


async def _apply_change(services: Services, username: str, change: str) -> int:
    async with services.db.transaction() as tx:
        account = await therapists.by_username(tx, normalise_username(username))
        if account is None:
            print(f"vsession: no therapist named {username!r}", file=sys.stderr)
            return 1
        if change == "reset-2fa":
            await enrolment.reset_totp(services.auth, tx, account, "admin:cli")
        else:
            await therapists.set_disabled(tx, account.id, change == "disable")
            if change == "disable":
                await signin_rows.delete_for_therapist(tx, account.id)
            await services.audit.append(
                tx, actor="admin:cli", action=f"therapist.{change}", obj=account.username
            )
    print(f"{change}: {account.username} done")
    return 0


async def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> int:
    return await _change_account(args, settings, "disable")


async def cmd_user_enable(args: argparse.Namespace, settings: Settings) -> int:
    return await _change_account(args, settings, "enable")


async def cmd_user_reset_2fa(args: argparse.Namespace, settings: Settings) -> int:
    return await _change_account(args, settings, "reset-2fa")


def cmd_keys_generate(args: argparse.Namespace) -> int:
    identity, recipient = age.generate_identity()
    try:
        age.write_identity_file(args.output, identity, recipient)
    except FileExistsError:
        print(f"vsession: {args.output} exists; not overwriting a key", file=sys.stderr)
        return 2
    print(
        f"Identity written to {args.output}. Keep it off this server: whoever holds it can open recordings."
    )
    print("Put this in the server's settings as recording_recipient:")
    print(recipient)
    return 0


async def cmd_recordings_list(args: argparse.Namespace, settings: Settings) -> int:
    services = await open_services(settings)
    try:
        rows = await library.listing(services, None)
    finally:
        await services.close()
    print(f"{'id':<18} {'session':<18} {'seg':>3} {'state':<9} {'bytes':>10}  ciphertext sha256")
    for r in rows:
        print(
            f"{r['id']:<18} {r['session']:<18} {r['segment']:>3} {r['state']:<9} {r['bytes'] or 0:>10}"
            f"  {r['ciphertext_sha256'] or ''}"
        )
    return 0


def _identities(path: Path) -> list[Any] | None:
    try:
        return age.read_identities(path)
    except (OSError, ValueError) as exc:
        print(f"vsession: cannot read identity file {path}: {exc}", file=sys.stderr)
        return None


def cmd_recordings_verify(args: argparse.Namespace) -> int:
    identities = _identities(args.identity)
    if identities is None:
        return 2
    try:
        result = age.verify(args.file, identities)
    except (OSError, age.AgeError) as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    print(f"{result.status}: {result.detail}")
    return 0 if result.status == age.Status.COMPLETE else 1


def cmd_recordings_decrypt(args: argparse.Namespace) -> int:
    identities = _identities(args.identity)
    if identities is None:
        return 2
    try:
        with open(args.output, "xb") as out:
            result = age.decrypt(args.file, identities, out, salvage=args.salvage)
    except FileExistsError:
        print(f"vsession: {args.output} exists; not overwriting", file=sys.stderr)
        return 2
    except (OSError, age.AgeError) as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    print(f"{result.status}: {result.detail}; wrote {result.written} bytes")
    if result.written == 0 and result.status != age.Status.COMPLETE:
        args.output.unlink(missing_ok=True)
    return 0 if result.status == age.Status.COMPLETE or (args.salvage and result.written) else 1


async def cmd_recordings_delete(args: argparse.Namespace, settings: Settings) -> int:
    services = await open_services(settings)
    try:
        async with services.db.transaction() as tx:
            row = await consent_store.recording(tx, args.recording_id)
        if row is None or row["state"] in ("deleted", "writing"):
            print(f"vsession: no finished recording {args.recording_id!r}", file=sys.stderr)
            return 1
        await library.delete(services, row, "admin:cli", "deleted by admin")
    finally:
        await services.close()
    print(f"deleted {args.recording_id}; receipt written to the audit log")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "settings_free", False):
        # Key and file tools work anywhere, e.g. on the practice's own computer, with no server settings.
        return int(args.run(args))
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(args.run(args, settings))
    except KeyboardInterrupt:
        return 130
