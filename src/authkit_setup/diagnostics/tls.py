"""Rung 3 helpers: a TLS handshake on an open socket, with failures named."""

from __future__ import annotations

import socket
import ssl

from authkit_setup.diagnostics.model import RungFailed, TlsStatus


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
    ca_param: str,
) -> tuple[ssl.SSLSocket, str, TlsStatus]:
    """Wrap `sock` in TLS (with SNI = host); return the TLS socket, a detail line saying what
    was proved (encryption only, or a certificate verified against what) and that status.

    `ca_param` is the URL parameter that names a CA file (sslrootcert, ssl_ca_certs): a failed
    verification's hint tells how to trust the provider's CA, never to turn verification off.
    """
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
            _trust_hint(exc, ca_param, cafile),
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
        detail += ", certificate not verified (encryption only)"
        return tls, detail, TlsStatus(in_use=True)
    trust = cafile or "system CAs"
    detail += f", certificate verified against {'the system CAs' if cafile is None else cafile}"
    detail += ", host name checked" if check_hostname else ", host name not checked"
    return tls, detail, TlsStatus(True, True, trust, check_hostname)


def _trust_hint(exc: ssl.SSLCertVerificationError, ca_param: str, cafile: str | None) -> str:
    if (
        "hostname" in str(exc.verify_message).lower()
        or "ip address" in str(exc.verify_message).lower()
    ):
        return (
            "connect with a host name the certificate names (the provider's host, not an IP "
            "address or an alias)"
        )
    where = f"the CA file {cafile} does not sign it" if cafile else "no system CA signs it"
    return (
        f"{where}: trust the provider's CA rather than turning verification off: save its CA "
        f"certificate (PEM) and add {ca_param}=/path/to/ca.pem to the URL"
    )
