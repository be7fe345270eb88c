"""The certificate browsers will see: readable, the key's own, in date, and trusted where it must be."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from vsession.config import Settings, is_loopback
from vsession.doctor.findings import Finding, ok, problem, warn

CHECK = "certificate"
RENEW_DAYS = 14  # Let's Encrypt renews 30 days ahead; two weeks left means renewal has failed for a while
RENEW = "renew it (certbot renew, or let Caddy hold the certificate: deploy/Caddyfile) and restart vsession"
LOCAL_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".localhost")
PUBLIC_CERT = (
    "use a certificate from a public CA for a public host (Let's Encrypt through deploy/Caddyfile), "
    "so browsers trust it without a warning"
)


def check_certificate(settings: Settings, now: datetime.datetime) -> Finding:
    if settings.tls_cert is not None and settings.tls_key is not None:
        return check_pair(settings.tls_cert, settings.tls_key, site_host(settings), now)
    if settings.self_signed:
        return _self_signed(settings, now)
    return _plain_http(settings)


def site_host(settings: Settings) -> str:
    """The name browsers use: public_origin's host, or the address vsession binds ("" when that is
    every address, which names no host)."""
    if settings.public_origin:
        return urlsplit(settings.public_origin).hostname or ""
    try:
        return "" if ipaddress.ip_address(settings.host).is_unspecified else settings.host
    except ValueError:
        return settings.host


def is_public(host: str) -> bool:
    """Reachable from the internet, as far as the name tells: not loopback, a LAN address or a local name."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return host != "localhost" and "." in host and not host.endswith(LOCAL_SUFFIXES)


def check_pair(cert_path: Path, key_path: Path, host: str, now: datetime.datetime) -> Finding:
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
    except OSError as exc:
        return problem(CHECK, f"cannot read tls_cert {cert_path}: {exc.strerror}", _readable(cert_path))
    except ValueError:
        return problem(
            CHECK, f"tls_cert {cert_path} holds no PEM certificate", "give the PEM chain (fullchain.pem)"
        )
    try:
        key = _private_key(key_path.read_bytes())
    except OSError as exc:
        return problem(CHECK, f"cannot read tls_key {key_path}: {exc.strerror}", _readable(key_path))
    except TypeError:
        return problem(
            CHECK,
            f"tls_key {key_path} is protected by a pass phrase; vsession would stop at start-up to ask",
            f"store it without one: openssl pkey -in {key_path} -out NEW.key (then chmod 600 NEW.key)",
        )
    except ValueError:
        return problem(
            CHECK, f"tls_key {key_path} holds no PEM private key", "give the PEM key (privkey.pem)"
        )
    leaf = chain[0]
    if _public_der(leaf.public_key()) != _public_der(key.public_key()):
        return problem(
            CHECK,
            f"tls_key {key_path} is not the key of the certificate in {cert_path}",
            "give the key that was made with this certificate (privkey.pem beside fullchain.pem)",
        )
    return _validity(leaf, f"{cert_path}", host, now)


def _validity(leaf: x509.Certificate, where: str, host: str, now: datetime.datetime) -> Finding:
    until = leaf.not_valid_after_utc
    if now > until:
        return problem(CHECK, f"{where} expired on {until:%Y-%m-%d %H:%M} UTC", RENEW)
    if now < leaf.not_valid_before_utc:
        return problem(
            CHECK,
            f"{where} is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            "check this machine's clock (see the clock lines), or wait until then",
        )
    if host and not _names(leaf, host):
        return problem(
            CHECK,
            f"{where} does not name {host}, the host browsers use",
            f"get a certificate for {host}, or set public_origin to the name it has",
        )
    days = (until - now).days
    self_signed = leaf.issuer == leaf.subject
    if self_signed and is_public(host):
        return warn(CHECK, f"{where} is self-signed, for the public host {host}", PUBLIC_CERT)
    if days < RENEW_DAYS:
        return warn(CHECK, f"{where} expires in {days} days, on {until:%Y-%m-%d} UTC", RENEW)
    kind = (
        "self-signed (fine on a LAN once browsers accept it)" if self_signed else "issued by " + _issuer(leaf)
    )
    return ok(CHECK, f"{where} {kind}, for {host or 'this host'}, valid until {until:%Y-%m-%d} ({days} days)")


def _self_signed(settings: Settings, now: datetime.datetime) -> Finding:
    host = site_host(settings)
    if is_public(host):
        return warn(
            CHECK, f"self_signed is on, for the public host {host}; browsers warn every client", PUBLIC_CERT
        )
    made = settings.data_dir / "tls" / "self-signed.crt"
    if not made.exists():
        return ok(
            CHECK, f"self_signed: vsession makes one at start-up for {host} (browsers ask to accept it once)"
        )
    return check_pair(made, made.with_suffix(".key"), "", now)


def _plain_http(settings: Settings) -> Finding:
    origin = settings.public_origin
    if origin.startswith("https://"):
        return ok(
            CHECK,
            f"none here: plain http on loopback ({settings.host}) behind a proxy that serves {origin} "
            "and holds the certificate (fine)",
        )
    if origin and not is_loopback(site_host(settings)):
        return problem(
            CHECK,
            f"public_origin {origin} is plain http; browsers give camera and microphone only to https pages",
            "put a TLS proxy in front (deploy/Caddyfile) and set public_origin to its https:// address",
        )
    return warn(
        CHECK,
        f"plain http on {settings.host} and no https public_origin: only browsers on this machine can join",
        "put a TLS proxy in front (deploy/Caddyfile) and set public_origin, or give tls_cert/tls_key",
    )


def _private_key(data: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(data, password=None)


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _names(leaf: x509.Certificate, host: str) -> bool:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False  # browsers ignore the common name
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return any(_dns_match(pattern, host) for pattern in names.get_values_for_type(x509.DNSName))
    return address in names.get_values_for_type(x509.IPAddress)


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        # A wildcard covers exactly one label (RFC 6125 §6.4.3).
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def _issuer(leaf: x509.Certificate) -> str:
    names = leaf.issuer.get_attributes_for_oid(
        x509.NameOID.ORGANIZATION_NAME
    ) or leaf.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else leaf.issuer.rfc4514_string()


def _readable(path: Path) -> str:
    return f"check the path, and that the user vsession runs as can read {path}"
