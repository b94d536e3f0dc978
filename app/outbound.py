"""Where outbound calls may go: public addresses only, checked on the address connected to.

Webhook URLs are chosen by apps, so every connection to one is a server-side request an
outsider can aim. The policy (``is_public``): an address is allowed only when
``ipaddress`` calls it global and it is neither multicast nor reserved; an IPv6 address that
embeds an IPv4 one (IPv4-mapped, 6to4, Teredo) must embed an allowed one. That refuses
loopback, link-local (cloud metadata at 169.254.169.254), private ranges, CGNAT, ``0.0.0.0``
/ ``::`` and the other special-purpose blocks.

``GuardedTransport`` enforces it where it cannot be dodged: its connection pool's network
backend resolves the host once, refuses the connection unless EVERY resolved address is
allowed, then connects to one of those very addresses (no second lookup, so no DNS
rebinding). TLS still verifies the certificate for the host name (SNI) and the ``Host``
header is the URL's. ``check_target`` runs the same policy when a URL is registered, to
refuse it early with a 400.

``allow_private=True`` (the operator's ``OPEN311_WEBHOOKS__ALLOW_PRIVATE_TARGETS``) turns
the address check off; names are then resolved and connected as usual.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Host-name lookups run on their own few threads: a hostile name that resolves slowly ties
# up these, never the event loop's default executor.
RESOLVER_THREADS = 4
RESOLVE_TIMEOUT_S = 2.0
_resolver = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="open311-resolve")


class TargetNotAllowed(httpcore.ConnectError):
    """The host is (or resolves to) an address outbound calls may not reach.

    A ``httpcore.ConnectError``, so httpx reports it as ``httpx.ConnectError`` with this text.
    """


def is_public(address: IPAddress) -> bool:
    """True when ``address`` is a globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if any(v4 is not None and not is_public(v4) for v4 in embedded):
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def parse_ip(host: str) -> IPAddress | None:
    """The address a URL host names literally (``[v6]`` or dotted IPv4), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def loose_ipv4(host: str) -> bool:
    """True for the other spellings C resolvers read as IPv4: ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``127.1`` (never a real host name; refused)."""
    if not host or any(ch not in "0123456789abcdefxABCDEFX." for ch in host):
        return False
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _forbidden(host: str, address: str) -> str:
    where = "" if address == host else f" ({address})"
    return (
        f"{host} is not a public address{where}; the operator allows private targets "
        "with OPEN311_WEBHOOKS__ALLOW_PRIVATE_TARGETS."
    )


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for TCP (in resolver order, no duplicates)."""
    loop = asyncio.get_running_loop()
    infos = await loop.run_in_executor(
        _resolver, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM
    )
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def refused(host: str, addresses: Iterable[str]) -> str | None:
    """Why a connection to ``host`` at ``addresses`` is refused, or None when all are public."""
    for text in addresses:
        address = parse_ip(text)
        if address is None or not is_public(address):
            return _forbidden(host, text)
    return None


async def check_target(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` (already a valid absolute http(s) URL) may not be called, or None.

    IP literals are checked as written; other numeric spellings are always refused; with
    private targets allowed nothing else is checked. A host name is resolved (at most
    ``RESOLVE_TIMEOUT_S``) and refused when any address is not public; a name that does not
    resolve now is let through: the check at connection time is the one that counts.
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    address = parse_ip(host)
    if address is None and loose_ipv4(host):
        return f"{host} is not a host name or a dotted IPv4 / bracketed IPv6 address."
    if allow_private:
        return None
    if address is not None:
        return None if is_public(address) else _forbidden(host, str(address))
    if host == "localhost" or host.endswith(".localhost"):
        return _forbidden(host, "loopback")
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await resolve(host, 443)
    except (OSError, TimeoutError, UnicodeError):
        return None
    return refused(host, addresses)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to allowed, already-checked addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        if not self.allow_private and (why := refused(host, addresses)):
            raise TargetNotAllowed(why)
        failure: Exception | None = None
        for address in addresses:  # exactly the addresses checked above
            left = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=left,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # noqa: S101 - invariant, not an input check
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not an outbound target.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through ``GuardedBackend``.

    No proxies (a proxy would make the connection for us) and no Unix sockets.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self.backend = GuardedBackend(allow_private=allow_private)
        # httpx builds its httpcore pool with no way to pass a network backend: the same
        # pool, with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
