"""Which upstream destinations the gateway may connect to (the egress policy).

Tenants choose provider `base_url`s, and the gateway POSTs there with a body
they chose, so an unchecked URL reaches the operator's private network
(metadata services, databases, the gateway's own API). By default only
public addresses are admitted; the operator widens that with
`MODELUX_EGRESS_ALLOW`, a comma-separated list of CIDRs (`10.0.0.0/8`,
`10.0.0.5`) and host names (`vllm.internal`).

A host name on the list admits that name whatever it resolves to: the operator
vouches for the name, not for an address. A CIDR admits addresses, whichever
name led to them.

The same policy is applied three times: when a credential is saved (the
clean 422), before a proxied call is admitted (so a refused call is never
counted), and on the address actually connected to (the real guard, which
DNS rebinding cannot get around; see proxy/providers/_http.py).
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from modelux_server.errors import ValidationFailed

IPAddress = IPv4Address | IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]

EGRESS_SETTING = "MODELUX_EGRESS_ALLOW"
RESOLVE_TIMEOUT = 2.0
_NAT64 = IPv6Network("64:ff9b::/96")
_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


class Unresolvable(Exception):
    """The host name has no address (or the lookup did not finish in time)."""


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    # These forms carry an IPv4 destination; they are judged by that address,
    # so `::ffff:127.0.0.1` is loopback and an allowed `10.0.0.0/8` admits `::ffff:10.0.0.5`.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, private, link-local,
    CGNAT, multicast, reserved, documentation or unspecified."""
    if isinstance(ip, IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(embedded)
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


def literal_address(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one (brackets allowed), else None."""
    try:
        return ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def normal_name(host: str) -> str:
    return host.lower().rstrip(".")


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[IPv4Network | IPv6Network, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> EgressPolicy:
        """Read `MODELUX_EGRESS_ALLOW`; a bad entry raises ValueError naming it."""
        networks: list[IPv4Network | IPv6Network] = []
        names: set[str] = set()
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ip_network(entry.removeprefix("[").removesuffix("]"), strict=False))
                continue
            except ValueError:
                pass
            name = normal_name(entry)
            if not _NAME.match(name):
                raise ValueError(f"{entry!r} is neither a CIDR, an IP address nor a host name")
            names.add(name)
        return cls(tuple(networks), frozenset(names))

    def admits_name(self, host: str) -> bool:
        return bool(self.names) and normal_name(host) in self.names

    def admits_address(self, address: str | IPAddress) -> bool:
        ip = address if isinstance(address, IPv4Address | IPv6Address) else literal_address(address)
        if ip is None:
            return False
        if is_public(ip):
            return True
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, IPv6Address):
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                candidates.append(embedded)
            if ip.scope_id:
                candidates.append(IPv6Address(int(ip)))
        return any(c in net for c in candidates for net in self.networks if c.version == net.version)


@lru_cache(maxsize=8)
def policy_for(spec: str) -> EgressPolicy:
    """The policy for a setting's value, parsed once."""
    return EgressPolicy.parse(spec)


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, with the loop's getaddrinfo."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise Unresolvable(host) from exc
    return [str(info[4][0]) for info in infos]


async def host_admitted(
    policy: EgressPolicy, host: str, port: int, resolve: Resolve = system_resolve
) -> bool:
    """Whether the policy admits `host`: by name, as a literal, or for every address it resolves to.

    Raises Unresolvable when a name has no address.
    """
    if policy.admits_name(host):
        return True
    literal = literal_address(host)
    if literal is not None:
        return policy.admits_address(literal)
    addresses = await resolve(host, port)
    if not addresses:
        raise Unresolvable(host)
    return all(policy.admits_address(a) for a in addresses)


class NotHttpURL(ValueError):
    """A URL the gateway does not connect to; the message says why (`must ...`)."""


def http_host_port(url: str) -> tuple[str, int]:
    """The host and port an http(s) URL connects to; NotHttpURL for anything else.

    A URL with user info counts as anything else: which host it names depends on
    the parser reading it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise NotHttpURL("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotHttpURL("must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise NotHttpURL("must not contain a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def url_host_port(url: str) -> tuple[str, int] | None:
    """`http_host_port`, with None for a URL the gateway does not connect to."""
    try:
        return http_host_port(url)
    except NotHttpURL:
        return None


def refusal(message: str, *, param: str | None = None) -> ValidationFailed:
    extra = {"param": param} if param else {}
    return ValidationFailed(message, code="egress_not_allowed", **extra)


class VerdictCache:
    """Yes/no answers per key, each kept `ttl` seconds (for good when None).

    Past `size` keys it starts over: a flood of distinct URLs costs lookups
    again, never memory.
    """

    def __init__(self, ttl: float | None = None, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float | None, bool]] = {}

    def get(self, key: str) -> bool | None:
        entry = self._entries.get(key)
        if entry is None or (entry[0] is not None and entry[0] <= time.monotonic()):
            return None
        return entry[1]

    def put(self, key: str, verdict: bool) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (None if self.ttl is None else time.monotonic() + self.ttl, verdict)


class EgressGuard:
    """The pre-admission check of a stored `base_url`.

    Cheap on the hot path: each URL's verdict is kept for `ttl` seconds, and names
    on the allow-list and IP literals are decided without a lookup. A name that does
    not resolve passes here; the connection then fails on its own, and the
    connect-time check still applies to whatever it resolves to later.
    """

    def __init__(self, policy: EgressPolicy, *, ttl: float = 30.0, resolve: Resolve = system_resolve) -> None:
        self.policy = policy
        self.resolve = resolve
        self._verdicts = VerdictCache(ttl)

    async def admits(self, url: str) -> bool:
        cached = self._verdicts.get(url)
        if cached is not None:
            return cached
        verdict = await self._judge(url)
        self._verdicts.put(url, verdict)
        return verdict

    async def _judge(self, url: str) -> bool:
        target = url_host_port(url)
        if target is None:
            return False
        try:
            return await host_admitted(self.policy, *target, self.resolve)
        except Unresolvable:
            return True
