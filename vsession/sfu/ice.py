"""ICE configuration shared by the server's peer connections and the pages."""

from __future__ import annotations

from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from vsession.config import Settings

_original_host_addresses = aioice.ice.get_host_addresses


def rtc_configuration(settings: Settings) -> RTCConfiguration:
    """An explicit list, even when empty: aiortc falls back to a public Google STUN server otherwise."""
    servers = [
        RTCIceServer(url, settings.turn_username or None, settings.turn_password or None)
        if url.startswith("turn")
        else RTCIceServer(url)
        for url in settings.ice_servers
    ]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def browser_ice_servers(settings: Settings) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    for url in settings.ice_servers:
        entry: dict[str, Any] = {"urls": url}
        if url.startswith("turn"):
            entry.update(username=settings.turn_username, credential=settings.turn_password)
        servers.append(entry)
    return servers


def offer_loopback(enabled: bool) -> None:
    """aioice never gathers 127.0.0.1. On a host with only loopback (CI sandboxes, tests) that leaves
    no usable candidate, so this adds it. Relies on aioice.ice.get_host_addresses, guarded by a test."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _original_host_addresses(use_ipv4, use_ipv6)
        return [*addresses, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    aioice.ice.get_host_addresses = with_loopback if enabled else _original_host_addresses
