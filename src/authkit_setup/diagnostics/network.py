"""Rungs 1 and 2: DNS (A and AAAA apart) and a TCP connect that tells refusal from silence."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from dataclasses import dataclass, field

from authkit_setup.diagnostics.model import RungFailed
from authkit_setup.diagnostics.url import ConnectionUrl


@dataclass
class Resolved:
    ipv4: list[str] = field(default_factory=list)
    ipv6: list[str] = field(default_factory=list)
    literal: bool = False

    def addresses(self, ipv6_ok: bool) -> list[str]:
        return self.ipv4 + (self.ipv6 if ipv6_ok else [])


def _lookup(host: str, family: int, out: dict[int, list[str] | OSError]) -> None:
    try:
        # Looked up on the module at call time so tests can answer from a table (no real DNS).
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
        out[family] = sorted({str(info[4][0]) for info in infos})
    except OSError as exc:  # socket.gaierror is an OSError
        out[family] = exc


def ipv6_available() -> bool:
    """Does this machine have a global IPv6 address (not just ::1)? Sends no traffic."""
    if not socket.has_ipv6:
        return False
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as table:
            rows = [line.split() for line in table]
    except OSError:
        return True  # not Linux: assume yes and let the TCP rung tell
    # columns: address, index, prefix length, scope (00 = global), flags, interface
    # fc00::/7 (unique local) is scope 00 too but never reaches the internet.
    return any(
        len(row) >= 6 and row[3] == "00" and row[5] != "lo" and not row[0].startswith(("fc", "fd"))
        for row in rows
    )


def resolve(url: ConnectionUrl, timeout: float) -> tuple[Resolved, str]:
    """Resolve A and AAAA concurrently within `timeout`; the detail line, or RungFailed."""
    host = url.host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        resolved = Resolved(literal=True)
        (resolved.ipv6 if ip.version == 6 else resolved.ipv4).append(str(ip))
        return resolved, f"{host} is an IP literal (no lookup)"

    results: dict[int, list[str] | OSError] = {}
    threads = [
        threading.Thread(target=_lookup, args=(host, fam, results), daemon=True)
        for fam in (socket.AF_INET, socket.AF_INET6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    v4, v6 = results.get(socket.AF_INET), results.get(socket.AF_INET6)
    if v4 is None and v6 is None:
        raise RungFailed(
            "dns_timeout",
            f"DNS lookup of {host} did not answer within {timeout:g} s",
            "check this machine's DNS resolver (/etc/resolv.conf) or try again",
        )
    resolved = Resolved(
        ipv4=v4 if isinstance(v4, list) else [],
        ipv6=v6 if isinstance(v6, list) else [],
    )
    if not resolved.ipv4 and not resolved.ipv6:
        if url.is_render_internal:
            raise RungFailed(
                "internal_host",
                f"{host} is a Render internal host name; it does not resolve outside Render",
                "internal URLs work only from a Render service in the same region; from here use "
                "the external URL, or run `authkit-setup check --service NAME`",
            )
        error = v4 if isinstance(v4, OSError) else v6
        temporary = isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN
        if temporary:
            raise RungFailed(
                "dns_failed",
                f"DNS lookup of {host} failed temporarily ({error})",
                "the resolver could not answer; check the network and try again",
            )
        raise RungFailed(
            "dns_not_found",
            f"{host} does not resolve (no A or AAAA record)",
            "check the host name for typos; copy the URL again from the provider's dashboard",
        )
    parts = [
        f"A {', '.join(resolved.ipv4[:3])}" if resolved.ipv4 else "no A record",
        f"AAAA {', '.join(resolved.ipv6[:3])}" if resolved.ipv6 else "no AAAA record",
    ]
    if not resolved.ipv4 and not _is_loopback_only(resolved.ipv6) and not ipv6_available():
        raise RungFailed(
            "ipv6_only",
            f"{host} has only IPv6 addresses (AAAA) and this machine has no IPv6 route",
            _ipv6_hint(host),
        )
    return resolved, "; ".join(parts)


def _is_loopback_only(addresses: list[str]) -> bool:
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _ipv6_hint(host: str) -> str:
    if host.endswith(".supabase.co"):
        return (
            "Supabase's direct host is IPv6-only: use the Supavisor pooler URL "
            "(aws-N-<region>.pooler.supabase.com, port 6543 or 5432) from Supabase's Connect panel"
        )
    return "use an IPv4-reachable host (a pooler or proxy), or run from a network with IPv6"


def connect(
    url: ConnectionUrl, resolved: Resolved, timeout: float
) -> tuple[socket.socket, str, str]:
    """Open TCP to the first address that answers; return (socket, address, detail)."""
    addresses = resolved.addresses(ipv6_ok=True)
    last: RungFailed | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((address, url.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address, f"connected to {_fmt(address, url.port)}"
        except TimeoutError:
            sock.close()
            last = RungFailed(
                "tcp_timeout",
                f"connecting to {_fmt(address, url.port)} timed out after {timeout:g} s (no answer at all)",
                _timeout_hint(url),
            )
            break  # one timeout is enough: a black-holed host would cost one per address
        except ConnectionRefusedError:
            sock.close()
            last = RungFailed(
                "tcp_refused",
                f"{_fmt(address, url.port)} refused the connection (nothing listens on port {url.port})",
                _refused_hint(url),
            )
        except OSError as exc:
            sock.close()
            if exc.errno in (
                errno.ENETUNREACH,
                errno.EHOSTUNREACH,
                errno.EADDRNOTAVAIL,
                errno.EAFNOSUPPORT,
            ):
                last = RungFailed(
                    "tcp_unreachable",
                    f"{_fmt(address, url.port)} is unreachable from this machine ({exc.strerror})",
                    "this network has no route to that address; check VPN, IPv6 support and firewall",
                )
            else:
                last = RungFailed(
                    "tcp_failed",
                    f"connecting to {_fmt(address, url.port)} failed: {exc.strerror or exc}",
                    "check the host and port",
                )
    assert last is not None
    raise last


def _fmt(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _refused_hint(url: ConnectionUrl) -> str:
    default = 5432 if url.target == "postgres" else 6379
    if url.port != default:
        return f"check the port: {url.target} usually listens on {default}; is the server running?"
    return "is the server running, and is this the right host? (an IP allow list can also refuse)"


def _timeout_hint(url: ConnectionUrl) -> str:
    return (
        "a firewall or IP allow list is dropping the traffic, or the host is in a private network; "
        "add this machine's IP to the store's allow list or check from inside the same network"
    )


def no_response(url: ConnectionUrl, timeout: float, what: str) -> RungFailed:
    return RungFailed(
        "no_response",
        f"the server accepted the TCP connection but did not answer {what} within {timeout:g} s",
        f"is port {url.port} really a {'PostgreSQL' if url.target == 'postgres' else 'Redis'} server? "
        "A proxy or firewall may be swallowing the traffic",
        rung="tcp",
    )
