"""Whose request this is: the address that per-address sign-in limits, link-guess limits, the audit
log and the access log name.

Behind a reverse proxy every request comes from the proxy, so the client's address must come from
its X-Forwarded-For; but anyone can send that header, so it counts only from a peer listed in
`trusted_proxies`. The header is read from the right, the end the nearest proxy appended to,
skipping the practice's own proxies: the first address that is not one of them is the client.
Whatever a client put further left is its own claim and is never reached.

Ours rather than aiohttp-remotes: its XForwardedFiltered believes the header from any peer, and its
XForwardedStrict answers a request from an untrusted peer with an error, where a direct request must
simply be taken at its peer address.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from vsession.appkeys import SETTINGS

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


@functools.cache
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parsed once per list (config.py has already refused a bad entry), not once per request."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d; compare and name it as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: tuple[str, ...]) -> str:
    """The client's address, given the peer's and every X-Forwarded-For line the request carries.
    A header the trusted proxy sent but that does not parse gives the peer: never an error."""
    networks = trusted_networks(trusted)
    peer_address = _address(peer)
    if peer_address is None or not _trusted(peer_address, networks):
        return peer
    # Several header lines are one comma-separated list (RFC 9110 5.3).
    hops = [_address(hop) for line in forwarded_for for hop in line.split(",")]
    addresses = [hop for hop in hops if hop is not None]
    if not addresses or len(addresses) < len(hops):
        return str(peer_address)
    for hop in reversed(addresses):
        if not _trusted(hop, networks):
            return str(hop)
    # Every hop is the practice's own (a client inside the proxy's network): the farthest one.
    return str(addresses[0])


def client_address(request: web.BaseRequest) -> str:
    """The request's client address: its peer, or behind a trusted proxy, the address that proxy
    names (see the module's docstring)."""
    peer = request.remote or UNKNOWN
    trusted = _trusted_proxies(request)
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), trusted)


def _trusted_proxies(request: web.BaseRequest) -> tuple[str, ...]:
    if not isinstance(request, web.Request):
        return ()
    try:
        return request.app[SETTINGS].trusted_proxies
    except (AssertionError, AttributeError):
        # A request aiohttp's parser refused never reached a route, so it has no app (aiohttp
        # asserts one; under -O the assert is gone and None has no attribute): its bytes came from
        # the peer, which is what it is known by.
        return ()
