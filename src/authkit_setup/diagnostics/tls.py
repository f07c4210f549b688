"""Rung 3 helpers: a TLS handshake on an open socket, with failures named."""

from __future__ import annotations

import socket
import ssl

from authkit_setup.diagnostics.model import RungFailed


def client_context(*, verify: bool, check_hostname: bool, cafile: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = check_hostname
    return context


def handshake(
    sock: socket.socket,
    host: str,
    *,
    verify: bool,
    check_hostname: bool,
    cafile: str | None,
    timeout: float,
    fix_untrusted: str,
) -> tuple[ssl.SSLSocket, str]:
    """Wrap `sock` in TLS (with SNI = host); return the TLS socket and a detail line."""
    try:
        context = client_context(verify=verify, check_hostname=check_hostname, cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise RungFailed(
            "tls_ca_unreadable",
            f"the CA file {cafile!r} cannot be loaded ({exc})",
            "point the CA setting at a readable PEM file",
        ) from None
    sock.settimeout(timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise RungFailed(
            "tls_certificate",
            f"the server's certificate is not trusted: {exc.verify_message}",
            fix_untrusted,
        ) from None
    except TimeoutError:
        raise RungFailed(
            "tls_timeout",
            f"the TLS handshake did not finish within {timeout:g} s",
            "the server accepted TCP but did not speak TLS; check the port and whether TLS is enabled",
        ) from None
    except (ssl.SSLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        raise RungFailed(
            "tls_handshake",
            f"the TLS handshake failed ({reason})",
            "the server does not speak TLS on this port, or needs a newer TLS version; check the port",
        ) from None
    cipher = tls.cipher()
    detail = f"{tls.version()} ({cipher[0] if cipher else 'unknown cipher'})"
    if not verify:
        detail += ", certificate not verified"
    return tls, detail
