"""ICE configuration shared by the server's peer connections and the pages."""

from __future__ import annotations

from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from vsession.config import Settings
from vsession.sfu.turn import credential

_original_host_addresses = aioice.ice.get_host_addresses
THERAPIST_TURN_NAME = "therapist"  # coturn logs usernames: a role or a seat number, never a name or id


def _is_turn(url: str) -> bool:
    return url.startswith(("turn:", "turns:"))


def rtc_configuration(settings: Settings) -> RTCConfiguration:
    """An explicit list, even when empty: aiortc falls back to a public Google STUN server otherwise.

    With `turn_secret` the server itself uses no TURN: it is the public end the pages' relays reach
    (on its host candidates, inside `media_ports`), so a relay of its own would only add a hop and a
    credential minted for no participant. STUN still tells it its public address behind a NAT."""
    servers = [
        RTCIceServer(url, settings.turn_username or None, settings.turn_password or None)
        if _is_turn(url)
        else RTCIceServer(url)
        for url in settings.ice_servers
        if not (settings.turn_secret and _is_turn(url))
    ]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def browser_ice_servers(settings: Settings, who: str, now: float) -> list[dict[str, Any]]:
    """The iceServers a page gets with each offer. With `turn_secret`, `who` (a seat number, or
    THERAPIST_TURN_NAME) gets its own TURN credential, valid `turn_ttl_minutes` from `now`; the
    secret stays here. Without it, the static turn_username/turn_password, if any."""
    if settings.turn_secret:
        expires_at = int(now) + settings.turn_ttl_minutes * 60
        username, password = credential(settings.turn_secret, who, expires_at)
    else:
        username, password = settings.turn_username, settings.turn_password
    servers: list[dict[str, Any]] = []
    for url in settings.ice_servers:
        entry: dict[str, Any] = {"urls": url}
        if _is_turn(url):
            entry.update(username=username, credential=password)
        servers.append(entry)
    return servers


def host_addresses(use_ipv4: bool, use_ipv6: bool, loopback: bool) -> list[str]:
    """The addresses the server's ICE agent gathers on: aioice's, plus 127.0.0.1 with `loopback`."""
    addresses = _original_host_addresses(use_ipv4, use_ipv6)
    if loopback and use_ipv4 and "127.0.0.1" not in addresses:
        return [*addresses, "127.0.0.1"]
    return addresses


def offer_loopback(enabled: bool) -> None:
    """aioice never gathers 127.0.0.1. On a host with only loopback (CI sandboxes, tests) that leaves
    no usable candidate, so this adds it. Relies on aioice.ice.get_host_addresses, guarded by a test."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return host_addresses(use_ipv4, use_ipv6, loopback=True)

    aioice.ice.get_host_addresses = with_loopback if enabled else _original_host_addresses
