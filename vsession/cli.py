"""`vsession` command line: serve, and the admin's tools. Exit 2 on bad settings or usage."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from vsession import logs
from vsession.app import audit_key_path, open_database
from vsession.audit import Checkpoint, head, verify
from vsession.config import ConfigError, Settings, load_settings
from vsession.keyfile import load_or_create_key

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
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "data_dir": args.data_dir,
        "host": args.host,
        "port": args.port,
    }
    for name in ("tls_cert", "tls_key", "self_signed"):
        overrides[name] = getattr(args, name, None)
    return load_settings(args.config, overrides=overrides)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from vsession.serve import serve

    logs.setup(settings.log_level)
    await serve(settings)
    return 0


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        checkpoint = Checkpoint.parse(args.checkpoint) if args.checkpoint else None
    except ValueError as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    db = await open_database(settings)
    try:
        result = await verify(db, load_or_create_key(audit_key_path(settings)), checkpoint)
    finally:
        await db.close()
    if result.ok:
        where = f", head {result.head}" if result.head else ""
        print(f"audit log intact: {result.entries} entries{where}")
        return 0
    print(f"audit log BROKEN at sequence {result.first_bad}: {result.reason}")
    return 1


async def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    db = await open_database(settings)
    try:
        point = await head(db)
    finally:
        await db.close()
    print(point if point else Checkpoint(0, "0" * 64))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        print(f"vsession: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(args.run(args, settings))
    except KeyboardInterrupt:
        return 130
