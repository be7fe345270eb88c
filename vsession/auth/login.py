"""Sign-in: password first, then a TOTP or recovery code; each step audited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from vsession.auth import passwords, recovery, signins, throttle, totp
from vsession.auth.context import AuthContext, AuthError, normalise_username, totp_context
from vsession.store import signins as signin_rows
from vsession.store import therapists
from vsession.store.db import Tx
from vsession.store.signins import SignIn
from vsession.store.therapists import Therapist

# One sentence for an unknown user, a wrong password and a disabled account alike.
BAD_CREDENTIALS = "That username and password do not match."
WRONG_CODE = "That code is not right, or it was already used. Wait for a new code and try again."
WRONG_RECOVERY = "That recovery code is not right or was already used."
SIGN_IN_AGAIN = "Your sign-in has expired. Please start again."
# The metrics' name for each audited step that can fail.
STEPS = {
    "login.password": "password",
    "login.totp": "totp",
    "login.recovery": "recovery",
    "step_up": "step_up",
}


@dataclass(frozen=True)
class Step:
    token: str
    next: str  # "totp", "enrol" or "done"


async def password_step(ctx: AuthContext, username: str, password: str, ip: str) -> Step:
    name = normalise_username(username)
    async with ctx.account_lock(name):
        async with ctx.db.transaction() as tx:
            account = await therapists.by_username(tx, name)
            # An account's name is no secret (it is in the therapists table); a name nobody has
            # may be a password typed into the wrong box, so the audit log gets only its hash.
            shown = name if account is not None else await throttle.hidden_name(ctx, name)
            refusal = await throttle.check(ctx, tx, name, ip)
            if refusal is not None:
                await ctx.audit.append(
                    tx, actor=f"ip:{ip}", action="login.password", obj=shown, outcome="throttled"
                )
        if refusal is not None:
            raise refusal
        if account is None or account.disabled:
            await asyncio.to_thread(passwords.dummy_verify, password)
            ok = False
        else:
            ok = await asyncio.to_thread(passwords.verify_password, password, account.password_hash)
        async with ctx.db.transaction() as tx:
            if not ok:
                await _failed(ctx, tx, name, ip, "login.password", shown=shown)
            else:
                assert account is not None
                await ctx.audit.append(tx, actor=f"therapist:{account.id}", action="login.password", obj=name)
                stage = "second_factor" if account.totp_enrolled else "enrol"
                token = await signins.issue(tx, ctx, account.id, stage)
        if not ok:
            raise AuthError(401, BAD_CREDENTIALS)
        return Step(token, "totp" if account.totp_enrolled else "enrol")


async def _failed(
    ctx: AuthContext, tx: Tx, name: str, ip: str, action: str, outcome: str = "fail", shown: str = ""
) -> None:
    """Count a failure for `name`; the audit log names it as `shown` (an account's own name, or
    the hash of a name nobody has)."""
    shown = shown or name
    locked = await throttle.fail(ctx, tx, name, ip)
    throttle.COUNTS.failures[STEPS[action]] += 1
    await ctx.audit.append(tx, actor=f"ip:{ip}", action=action, obj=shown, outcome=outcome)
    if locked:
        throttle.COUNTS.lockouts += 1
        await ctx.audit.append(
            tx,
            actor="system",
            action="login.lockout",
            obj=shown,
            details={"minutes": ctx.settings.lockout_minutes},
        )


async def _second_factor_account(ctx: AuthContext, tx: Tx, session: SignIn | None) -> Therapist:
    if session is None or session.stage != "second_factor":
        raise AuthError(401, SIGN_IN_AGAIN)
    account = await therapists.by_id(tx, session.therapist_id)
    if account is None or account.disabled:
        raise AuthError(401, SIGN_IN_AGAIN)
    return account


async def code_step(
    ctx: AuthContext, session_token: str | None, code: str, ip: str, use_recovery: bool
) -> str:
    """Finish sign-in; returns a new full-session token (the password-only one is dropped)."""
    session = await signins.lookup(ctx, session_token, touch=False)
    async with ctx.db.transaction() as tx:
        account = await _second_factor_account(ctx, tx, session)
    assert session is not None
    async with ctx.account_lock(account.username):
        async with ctx.db.transaction() as tx:
            refusal = await throttle.check(ctx, tx, account.username, ip)
            if refusal is None:
                # Re-read inside the lock: the last used step may have moved since.
                account = await _second_factor_account(ctx, tx, session)
                if use_recovery:
                    ok = await therapists.use_recovery_code(
                        tx, account.id, recovery.hash_code(code), ctx.clock.now()
                    )
                    outcome = "ok" if ok else "fail"
                else:
                    outcome = await _check_totp(ctx, tx, account, code)
                    ok = outcome == "ok"
                action = "login.recovery" if use_recovery else "login.totp"
                if ok:
                    await throttle.succeed(ctx, tx, account.username)
                    await signin_rows.delete(tx, session.token_hash)
                    totp_at = 0.0 if use_recovery else ctx.clock.now()
                    token = await signins.issue(tx, ctx, account.id, "full", totp_at)
                    await ctx.audit.append(
                        tx, actor=f"therapist:{account.id}", action=action, obj=account.username
                    )
                else:
                    await _failed(ctx, tx, account.username, ip, action, outcome)
        if refusal is not None:
            raise refusal
    if not ok:
        raise AuthError(401, WRONG_RECOVERY if use_recovery else WRONG_CODE)
    return token


async def _check_totp(ctx: AuthContext, tx: Tx, account: Therapist, code: str) -> str:
    """'ok' and the step is stored in this same transaction (RFC 6238 §5.2: accept a code once);
    'replay' for a code that was valid but already used; else 'fail'."""
    secret = ctx.box.open(account.totp_secret, totp_context(account.id)).decode()
    now = ctx.clock.now()
    step = totp.match_step(secret, code, now, account.totp_last_step)
    if step is not None:
        await therapists.set_totp_step(tx, account.id, step)
        return "ok"
    return "replay" if totp.match_step(secret, code, now, -1) is not None else "fail"


async def logout(ctx: AuthContext, session: SignIn) -> None:
    async with ctx.db.transaction() as tx:
        await signin_rows.delete(tx, session.token_hash)
        await ctx.audit.append(tx, actor=f"therapist:{session.therapist_id}", action="logout")


async def step_up(ctx: AuthContext, session: SignIn, code: str, ip: str) -> None:
    """A fresh TOTP for sensitive actions; shares the replay guard and the failure count."""
    async with ctx.db.transaction() as tx:
        account = await therapists.by_id(tx, session.therapist_id)
    if account is None:
        raise AuthError(401, SIGN_IN_AGAIN)
    async with ctx.account_lock(account.username):
        async with ctx.db.transaction() as tx:
            refusal = await throttle.check(ctx, tx, account.username, ip)
            if refusal is None:
                account = await therapists.by_id(tx, session.therapist_id)
                assert account is not None
                outcome = await _check_totp(ctx, tx, account, code)
                if outcome == "ok":
                    await throttle.succeed(ctx, tx, account.username)
                    await signin_rows.set_totp_at(tx, session.token_hash, ctx.clock.now())
                    await ctx.audit.append(tx, actor=f"therapist:{account.id}", action="step_up")
                else:
                    await _failed(ctx, tx, account.username, ip, "step_up", outcome)
        if refusal is not None:
            raise refusal
    if outcome != "ok":
        raise AuthError(401, WRONG_CODE)


def needs_step_up(ctx: AuthContext, session: SignIn) -> bool:
    return ctx.clock.now() - session.totp_at > ctx.settings.step_up_minutes * 60
