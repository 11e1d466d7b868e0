"""Webhooks: tell a client's URL that its job ended, signed, and never to an address inside our network.

A callback URL is checked twice: when the job is accepted (a URL whose host resolves to a
private address is refused with 400), and again on every delivery, against the very address
the connection is opened to, so a DNS answer that changes between the check and the connect
(DNS rebinding) cannot reach loopback, private, link-local or cloud-metadata addresses.
Redirects are never followed: a 3xx is a failed delivery like any other non-2xx answer.
Standard library only; the Celery task that retries lives in tasks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Thumbnailer-Signature"
TIMEOUT_SECONDS = 10
MAX_URL_LENGTH = 2000
USER_AGENT = "Thumbnailer-Webhook/1"


class CallbackRefused(Exception):
    """The callback URL may not be used: malformed, or its host is not a public address."""


@dataclass(frozen=True)
class Delivery:
    """How one delivery attempt went: the receiver's status, or why there was none."""

    status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def sign(body: bytes, *, secret: str) -> str:
    """The X-Thumbnailer-Signature value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata lives there), multicast and reserved."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_callback_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL; raise CallbackRefused if it is not one."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"The callback URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise CallbackRefused("The callback URL is not a valid URL.") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("The callback URL must be an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise CallbackRefused("The callback URL must not carry a user name or password.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def allowed_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses host resolves to that we may connect to; raise CallbackRefused if none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise CallbackRefused(f"The callback host {host!r} could not be resolved.") from error
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if allow_private:
        return addresses
    public = [address for address in addresses if is_public_address(address)]
    if len(public) != len(addresses):
        # One private answer among public ones is how rebinding attacks hide: refuse them all.
        raise CallbackRefused(
            "The callback URL points at a private, loopback or link-local address, which is not allowed."
        )
    return public


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse a callback URL at upload time (CallbackRefused with a sentence for the client)."""
    _, host, port, _ = parse_callback_url(url)
    allowed_addresses(host, port, allow_private=allow_private)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one already-checked address, with the certificate checked against the URL's host."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float):
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self._server_hostname = server_hostname

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)


def deliver(
    url: str, body: bytes, *, secret: str, allow_private: bool, timeout: float = TIMEOUT_SECONDS
) -> Delivery:
    """POST body (JSON) to url once, connecting only to an address that passed the check."""
    try:
        scheme, host, port, path = parse_callback_url(url)
        addresses = allowed_addresses(host, port, allow_private=allow_private)
    except CallbackRefused as refused:
        return Delivery(status=None, error=str(refused))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret=secret),
        "User-Agent": USER_AGENT,
        "Host": host if port in (80, 443) else f"{host}:{port}",
    }
    last_error = ""
    for address in addresses:
        if scheme == "https":
            connection = _PinnedHTTPSConnection(address, port, server_hostname=host, timeout=timeout)
        else:
            connection = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)  # an answer is only its status; never read a huge body
            return Delivery(status=response.status)
        except (OSError, http.client.HTTPException) as error:
            last_error = f"{type(error).__name__}: {error}"
        finally:
            connection.close()
    return Delivery(status=None, error=last_error or "no address to connect to")
