"""Where a webhook may be sent: the SSRF guard.

A target URL is http or https, and every address its host resolves to must be a public one: not
loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) or a cloud metadata
address, unless ``WEBHOOKS_ALLOW_PRIVATE`` (development and tests only). It is checked when an
endpoint is saved and again before every attempt, and the attempt connects to the address that was
checked (DNS may answer differently a second later: rebinding), never to a fresh lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from callcenter.errors import ApplicationError

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
ALLOWED_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL and the address to connect to for it."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


def _refused(detail: str) -> ApplicationError:
    return ApplicationError(code="webhook_url_refused", message=detail, status=400)


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def target_resolve(url: str) -> Target:
    """The address to deliver ``url`` to, or ``ApplicationError`` 400 ``webhook_url_refused``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refused(f"The URL is not valid: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _refused("A webhook URL is http or https.")
    host = parts.hostname
    if not host:
        raise _refused("The URL has no host.")
    if parts.username or parts.password:
        raise _refused("A webhook URL carries no user or password: authenticate by the signature.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _refused(f"The host {host!r} does not resolve.") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise _refused(f"The host {host!r} does not resolve.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        # Every address must be public: a host answering one public and one private address would
        # otherwise reach the private one whenever the resolver's order changes.
        private = [str(a) for a in addresses if not address_is_public(a)]
        if private:
            raise _refused(
                f"The host {host!r} resolves to a loopback, private, link-local or metadata address "
                f"({', '.join(sorted(set(private)))}); webhooks go to public addresses only."
            )
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))
