"""The one verifying TLS context of the process, shared by every outbound client we build.

Each `ssl.SSLContext` that loads a CA bundle holds its own parsed copy of every certificate
(~1 MB of RSS for Debian's 144), and glibc keeps that memory after a context is freed. Left
to themselves the SDK clients, python-telegram-bot's two requests, the memory embedder and
each web_fetch / web_search / speech call would each build one; with everything on that was
a dozen loads. Every client we make is handed this context instead (httpx and httpx2
`verify=`, aiohttp `ssl=`, google-genai's client args).

Which certificates it trusts is what the provider SDKs (httpx2) trust on their own:
`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the system store (the OpenSSL paths Python
was built with), else certifi's bundle when the system has none; on macOS and Windows the
OS trust store through truststore, as httpx2 does. Verification is never weakened: the
context requires a certificate and checks the host name (web_fetch's pinned connections
check the name they were asked for, passed as SNI).

Sharing is safe because a context is only read once built, except for ALPN: httpcore sets
the protocols on the context before each connection, so every client sharing it must speak
HTTP/1.1 only (all of ours do; an HTTP/2 client would need a context of its own).
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import threading

_lock = threading.Lock()
_context: ssl.SSLContext | None = None
_HASHED = re.compile(r"[0-9a-fA-F]{8}\.\d+")


def client_context() -> ssl.SSLContext:
    """The shared verifying context, built on first use (from any thread)."""
    global _context
    context = _context
    if context is None:
        with _lock:
            if _context is None:
                _context = _build()
            context = _context
    return context


def _build() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or None
    capath = os.environ.get("SSL_CERT_DIR") or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    if sys.platform in ("darwin", "win32"):
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    paths = ssl.get_default_verify_paths()
    if os.path.isfile(paths.openssl_cafile):
        return ssl.create_default_context(cafile=paths.openssl_cafile)
    if _has_hashed_certs(paths.openssl_capath):
        return ssl.create_default_context(capath=paths.openssl_capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _has_hashed_certs(path: str) -> bool:
    """A directory OpenSSL can look certificates up in (`<hash>.<n>` names, c_rehash)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(_HASHED.fullmatch(n) for n in names)
