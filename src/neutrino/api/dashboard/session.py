"""The dashboard's browser session: where the token lives and what makes a request trustworthy.

The identity token never reaches the page's scripts: it is kept in an HttpOnly, SameSite=Strict
cookie scoped to ``/dashboard`` and added to API requests by the dashboard's own proxy. Requests
that change anything must also pass two CSRF checks: the ``Origin`` (when the browser sends one)
is this server's own, and the ``X-CSRF-Token`` header repeats the value of a second, script-readable
cookie (the double-submit pattern: another site can make the browser send the cookie, but it can
neither read it nor set the header).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

TOKEN_COOKIE = "neutrino_dashboard_token"
CSRF_COOKIE = "neutrino_dashboard_csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/dashboard"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Only the dashboard's own files: no inline script or style, no other origin, no framing.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def new_csrf_value() -> str:
    return secrets.token_urlsafe(32)


def cookie(name: str, value: str, *, http_only: bool, secure: bool, max_age: int | None) -> str:
    """One ``Set-Cookie`` value; ``max_age=0`` deletes the cookie."""
    parts = [f"{name}={value}", f"Path={COOKIE_PATH}", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_key(token: str) -> str:
    """A name for a session that is not its token (tokens never become dictionary keys or logs)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CsrfVerdict:
    ok: bool
    reason: str = ""


def check_csrf(method: str, headers: Mapping[str, str], cookies: Mapping[str, str], own_origin: str) -> CsrfVerdict:
    """Whether a request may act: safe methods always; others only from this origin with the token."""
    if method.upper() in SAFE_METHODS:
        return CsrfVerdict(True)
    origin = headers.get("origin")
    if origin is not None and origin != own_origin:
        return CsrfVerdict(False, "The request came from another origin.")
    if headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return CsrfVerdict(False, "The request came from another site.")
    expected = cookies.get(CSRF_COOKIE, "")
    given = headers.get(CSRF_HEADER, "")
    if not expected or not given or not secrets.compare_digest(expected, given):
        return CsrfVerdict(False, "The CSRF token is missing or wrong; reload the dashboard.")
    return CsrfVerdict(True)
