"""Creating therapist accounts: one-time setup links, the password, TOTP enrolment, recovery codes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from vsession.auth import passwords, recovery, signins, totp
from vsession.auth.context import AuthContext, AuthError, normalise_username, totp_context
from vsession.auth.tokens import looks_like_token, new_token, token_hash
from vsession.store import setup_links, therapists
from vsession.store import signins as signin_rows
from vsession.store.db import Tx
from vsession.store.signins import SignIn
from vsession.store.therapists import Therapist

BAD_LINK = "This setup link is not valid: it may have expired or been used already. Ask for a new one."
USERNAME_RULE = "Choose a username of 3 to 64 characters, without spaces."
USERNAME_TAKEN = "That username is taken. Please choose another."
ENROLMENT_EXPIRED = "Your enrolment has expired. Sign in again with your password to continue."


async def create_link(ctx: AuthContext, created_by: int | None, is_admin: bool) -> str:
    token = new_token()
    expires = ctx.clock.now() + ctx.settings.setup_link_minutes * 60
    async with ctx.db.transaction() as tx:
        await setup_links.insert(tx, token_hash(token), created_by, is_admin, expires)
        actor = f"therapist:{created_by}" if created_by else "admin:cli"
        await ctx.audit.append(tx, actor=actor, action="setup_link.create", details={"admin": is_admin})
    return f"{ctx.settings.origin}/setup#t={token}"


def _username_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 64 or any(c.isspace() for c in name):
        return USERNAME_RULE
    return None


async def complete_setup(
    ctx: AuthContext, token: str, display_name: str, username: str, password: str, ip: str
) -> str:
    """Create the account (not yet enrolled) and return an enrolment-stage session token."""
    name = normalise_username(username)
    display_name = display_name.strip()
    problem = (
        (BAD_LINK if not looks_like_token(token) else None)
        or _username_problem(name)
        or ("Please enter your name." if not 1 <= len(display_name) <= 100 else None)
        or passwords.password_problem(password, name)
    )
    if problem:
        raise AuthError(400, problem)
    # Check the link before the deliberately slow hash, so nobody can make the server hash for free.
    async with ctx.db.transaction() as tx:
        if await setup_links.usable(tx, token_hash(token), ctx.clock.now()) is None:
            raise AuthError(400, BAD_LINK)
        if await therapists.by_username(tx, name) is not None:
            raise AuthError(409, USERNAME_TAKEN)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    secret = totp.new_secret()
    now = ctx.clock.now()
    async with ctx.db.transaction() as tx:
        link = await setup_links.usable(tx, token_hash(token), now)
        # A name is never handed on, not even one whose enrolment is unfinished or was reset: audit
        # entries name therapist:<id>, and that must stay one person. An unfinished enrolment goes on
        # at its owner's next password sign-in.
        if link is not None and await therapists.by_username(tx, name) is None:
            await setup_links.mark_used(tx, token_hash(token), now)
            account_id = await therapists.insert(
                tx, name, display_name, password_hash, b"", bool(link["is_admin"]), now
            )
            await tx.execute(
                "UPDATE therapists SET totp_secret = ? WHERE id = ?",
                (ctx.box.seal(secret.encode(), totp_context(account_id)), account_id),
            )
            await ctx.audit.append(
                tx,
                actor=f"ip:{ip}",
                action="therapist.create",
                obj=name,
                details={"id": account_id, "admin": bool(link["is_admin"])},
            )
            return await signins.issue(tx, ctx, account_id, "enrol")
    if link is None:
        raise AuthError(400, BAD_LINK)
    raise AuthError(409, USERNAME_TAKEN)


async def enrolling_account(ctx: AuthContext, session: SignIn | None) -> Therapist:
    if session is None or session.stage != "enrol":
        raise AuthError(401, ENROLMENT_EXPIRED)
    async with ctx.db.transaction() as tx:
        account = await therapists.by_id(tx, session.therapist_id)
    if account is None or account.disabled or account.totp_enrolled:
        raise AuthError(401, ENROLMENT_EXPIRED)
    return account


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr: str


def enrolment_secret(ctx: AuthContext, account: Therapist) -> str:
    return ctx.box.open(account.totp_secret, totp_context(account.id)).decode()


async def enrolment_details(ctx: AuthContext, account: Therapist) -> Enrolment:
    secret = enrolment_secret(ctx, account)
    uri = totp.provisioning_uri(secret, account.username)
    # Drawing the QR code takes 50-120 ms of pure Python: off the loop that carries the calls.
    return Enrolment(secret, uri, await asyncio.to_thread(totp.qr_svg_data_uri, uri))


async def complete_enrolment(ctx: AuthContext, session: SignIn | None, code: str) -> tuple[str, list[str]]:
    """Enrolment ends only with a valid code; then a full session and 10 recovery codes, shown once."""
    account = await enrolling_account(ctx, session)
    assert session is not None
    secret = enrolment_secret(ctx, account)
    now = ctx.clock.now()
    step = totp.match_step(secret, code, now, account.totp_last_step)
    if step is None:
        raise AuthError(400, "That code is not right. Check the time on your phone and try the next code.")
    codes = recovery.new_codes()
    async with ctx.db.transaction() as tx:
        # Re-check inside the write: a double-submitted form must not enrol twice, leaving a
        # second session and replacing the recovery codes the person was just shown.
        current = await therapists.by_id(tx, account.id)
        if (
            await signin_rows.get(tx, session.token_hash) is None
            or current is None
            or current.totp_enrolled
            or current.disabled
        ):
            raise AuthError(401, ENROLMENT_EXPIRED)
        await therapists.mark_enrolled(tx, account.id, step)
        await therapists.replace_recovery_codes(tx, account.id, [recovery.hash_code(c) for c in codes])
        await signin_rows.delete(tx, session.token_hash)
        token = await signins.issue(tx, ctx, account.id, "full", now)
        await ctx.audit.append(tx, actor=f"therapist:{account.id}", action="totp.enrol", obj=account.username)
    return token, codes


async def change_password(ctx: AuthContext, session: SignIn, current: str, new: str) -> str:
    """Returns a new session token; every other session of the account ends."""
    async with ctx.db.transaction() as tx:
        account = await therapists.by_id(tx, session.therapist_id)
    assert account is not None
    if not await asyncio.to_thread(passwords.verify_password, current, account.password_hash):
        raise AuthError(400, "Your current password is not right.")
    problem = passwords.password_problem(new, account.username)
    if problem:
        raise AuthError(400, problem)
    new_hash = await asyncio.to_thread(passwords.hash_password, new)
    async with ctx.db.transaction() as tx:
        await therapists.set_password(tx, account.id, new_hash)
        await signin_rows.delete_for_therapist(tx, account.id)
        token = await signins.issue(tx, ctx, account.id, "full", session.totp_at)
        await ctx.audit.append(
            tx, actor=f"therapist:{account.id}", action="password.change", obj=account.username
        )
    return token


async def reset_totp(ctx: AuthContext, tx: Tx, account: Therapist, actor: str) -> None:
    """The account keeps its id, username and password and must enrol a new authenticator at its
    next password sign-in; its sessions and recovery codes end now."""
    secret = totp.new_secret()
    await therapists.reset_totp(tx, account.id, ctx.box.seal(secret.encode(), totp_context(account.id)))
    await signin_rows.delete_for_therapist(tx, account.id)
    await ctx.audit.append(tx, actor=actor, action="totp.reset", obj=account.username)
