"""Parsing of ``host:port`` addresses and egress destinations."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# RFC 1123 host names; each label 1-63 characters, the whole name at most 253.
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def split_host_port(text: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[v6]:port``; raise ValueError saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected 'host:port', got {text!r}")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"expected '[ipv6]:port', got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected 'host:port', got {text!r}")
        if ":" in host:
            raise ValueError(f"IPv6 addresses need brackets, as in '[::1]:443', got {text!r}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port must be 1-65535, got {port_text!r} in {text!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A listen address."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        host, port = split_host_port(text)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if host != "localhost":
                raise ValueError(
                    f"listen address must be an IP literal or 'localhost', got {host!r}"
                ) from None
        return cls(host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One allowed external destination: a host name, an address or (if allowed) a range."""

    host: str
    port: int
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @property
    def is_range(self) -> bool:
        return self.network is not None and self.network.num_addresses > 1

    @classmethod
    def parse(cls, text: str, *, allow_range: bool = False) -> EgressRule:
        host, port = split_host_port(text)
        host = host.lower()
        if "/" in host:
            try:
                net = ipaddress.ip_network(host, strict=True)
            except ValueError as exc:
                raise ValueError(f"bad address range {host!r}: {exc}") from None
            if net.num_addresses > 1 and not allow_range:
                raise ValueError(
                    f"egress to a range ({host}, {net.num_addresses} addresses) is refused: "
                    "name single hosts, or set 'allow_range: true' on this entry if you "
                    "really mean the whole range"
                )
            return cls(str(net.network_address), port, net)
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.match(host.rstrip(".")):
                raise ValueError(f"not a valid host name or address: {host!r}") from None
            return cls(host.rstrip("."), port)
        return cls(str(addr), port, ipaddress.ip_network(addr))

    def __str__(self) -> str:
        host = str(self.network) if self.is_range else self.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
