"""The operator page: `/admin`, signed in with ADMIN_TOKEN through a login form.

- `GET /admin`: the login form, or (signed in) the dashboard: cache, breaker, render queue,
  winners with a take-down button each. It reloads itself every `REFRESH_SECONDS`.
- `POST /admin/login` (form field `token`): checked like `require_admin` (bytes compare, the
  HTTP_RATE_LIMIT_ADMIN and ADMIN_AUTH_FAILURE_LIMIT limits); sets the session cookie.
- `POST /admin/logout`: clears it. `POST /admin/takedown` (fields `id`, `csrf`): the same
  take-down as `DELETE /api/winners/{id}`. `GET /admin/stats.json`: the dashboard's numbers.

The session cookie is `<expiry>.<nonce>.<mac>`, an HMAC under a key derived from ADMIN_TOKEN:
changing the token signs everyone out, and nothing secret is ever in a URL. It is HttpOnly,
SameSite=Strict, Path=/admin, Secure over https. Against cross-site requests the POSTs also
check `Origin` (when a browser sends one) and, once signed in, a form token bound to the
session. Pages carry no script (the refresh is a meta tag) and every value is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.api import winners as winners_api
from app.api.deps import FAILED_AUTH, CacheDep, RateLimitsDep, SettingsDep, client_address, enforce
from app.core.config import Settings
from app.core.errors import ApiError, error_response
from app.services.video_cache import VideoCache
from app.video.service import VideoService, get_video_service
from app.video.winners import MAX_PAGE, Winner

ServiceDep = Annotated[VideoService, Depends(get_video_service)]

COOKIE = "punchline_admin"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
REFRESH_SECONDS = 5
MAX_FORM_BYTES = 4096
COUNT_PAGES = 10  # winners counted up to COUNT_PAGES * MAX_PAGE, then shown as "N+"
KEY_INFO = b"punchline admin session v1"
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#18181b;color:#f5f5f5}
main{max-width:52rem;margin:0 auto;padding:1rem}
section{margin:0 0 1rem;padding:.75rem;background:#060606;border:1px solid #46464c;
border-radius:8px}
h1,h2{margin:.25rem 0 .75rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{color:#aaa}dd{margin:0;overflow-wrap:anywhere}
ol{padding-left:1.25rem}li{margin:0 0 .5rem;overflow-wrap:anywhere}
input,button{font:inherit;padding:.4rem .6rem;border-radius:4px}
button{background:#ffce40;color:#000;border:0;cursor:pointer}
.notice{padding:.5rem .75rem;border-radius:4px;background:#2d2d10}
.error{background:#4a1515}.bad{color:#ff8080}.good{color:#80e080}
form.inline{display:inline;margin-left:.5rem}
code{font-size:.85rem}
"""


# --- the session cookie -----------------------------------------------------------------------
def _key(admin_token: str) -> bytes:
    return hmac.new(admin_token.encode("utf-8"), KEY_INFO, hashlib.sha256).digest()


def _mac(admin_token: str, purpose: str, value: str) -> str:
    digest = hmac.new(_key(admin_token), f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_session(admin_token: str, expires: int) -> str:
    """A session cookie value valid until `expires` (Unix seconds) for this token."""
    body = f"{expires}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(admin_token, 'session', body)}"


def session_valid(admin_token: str, value: str | None, now: float | None = None) -> bool:
    if not admin_token or not value or value.count(".") != 2:
        return False
    body, _, mac = value.rpartition(".")
    expires = body.split(".", 1)[0]
    if not expires.isascii() or not expires.isdigit() or not mac.isascii():
        return False
    if not hmac.compare_digest(mac.encode("ascii"),
                               _mac(admin_token, "session", body).encode("ascii")):
        return False
    return int(expires) > (time.time() if now is None else now)


def csrf_token(admin_token: str, session: str) -> str:
    """The form token of one session: a cross-site page can neither read nor forge it."""
    return _mac(admin_token, "csrf", session)


def form_token_matches(presented: str, expected: str) -> bool:
    """The token typed in the form against ADMIN_TOKEN: constant-time, as bytes."""
    try:
        raw = presented.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be the token
        return False
    return hmac.compare_digest(raw, expected.encode("utf-8"))


# --- pages ------------------------------------------------------------------------------------
def _page(body: str, status: int = 200, *, refresh: bool = False,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    head = (f"<meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS};url=/admin\">"
            if refresh else "")
    page = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>Punchline admin</title>{head}<style>{STYLE}</style></head>"
            f"<body><main><h1>Punchline admin</h1>{body}</main></body></html>\n")
    return HTMLResponse(page, status_code=status, headers={**HEADERS, **(headers or {})})


def _notice(text: str, error: bool = False) -> str:
    css = "notice error" if error else "notice"
    return f"<p class=\"{css}\" role=\"{'alert' if error else 'status'}\">{escape(text)}</p>"


def login_page(message: str = "", status: int = 200,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    body = ((_notice(message, error=True) if message else "")
            + "<form method=\"post\" action=\"/admin/login\">"
            "<p><label for=\"token\">Admin token</label><br>"
            "<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\""
            " required></p><p><button type=\"submit\">Sign in</button></p></form>")
    return _page(body, status, headers=headers)


def _error_page(exc: ApiError) -> HTMLResponse:
    return _page(_notice(str(exc.detail), error=True), exc.status_code,
                 headers=dict(exc.headers or {}))


def _disabled() -> HTMLResponse:
    return _page(_notice("Admin is disabled: set ADMIN_TOKEN to enable it.", error=True), 403)


# --- the numbers ------------------------------------------------------------------------------
async def _winners(service: VideoService) -> tuple[list[Winner], int, bool]:
    """The newest winners (one page), how many were counted, and whether there are more."""
    first, cursor = await service.winners.page(MAX_PAGE)
    count, pages = len(first), 1
    while cursor is not None and pages < COUNT_PAGES:
        rows, cursor = await service.winners.page(MAX_PAGE, cursor)
        count, pages = count + len(rows), pages + 1
    return first, count, cursor is not None


def _breaker(cache: dict[str, Any]) -> str:
    if not cache.get("redis_configured"):
        return "memory only (no Redis configured)"
    if cache.get("degraded_since"):
        return "open (degraded)"
    return "closed" if cache.get("redis_connected") else "open"


async def collect(cache: VideoCache, service: VideoService) -> dict[str, Any]:
    cache_stats = await cache.aget_stats()
    listed, count, more = await _winners(service)
    return {
        "cache": cache_stats,
        "breaker": _breaker(cache_stats),
        "video": service.stats(),
        "winners": {"count": count, "more": more,
                    "recent": [{"id": w.sha, "sentence": w.sentence} for w in listed]},
    }


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"<dt>{escape(k)}</dt><dd>{escape('—' if v is None else str(v))}</dd>"
                   for k, v in pairs)


def dashboard(stats: dict[str, Any], csrf: str, notice: str = "", error: bool = False,
              status: int = 200) -> HTMLResponse:
    c, v, w = stats["cache"], stats["video"], stats["winners"]
    rate = c.get("hit_rate", 0.0)
    cache = _rows([("Cache type", c.get("cache_type")), ("Entries", c.get("total_entries")),
                   ("Hit rate", f"{rate * 100:.1f}% ({c.get('hits', 0)} hits, "
                                f"{c.get('misses', 0)} misses)"),
                   ("Memory entries", f"{c.get('memory_entries')} / "
                                      f"{c.get('memory_max_entries')}")])
    breaker = _rows([("Breaker", stats["breaker"]), ("Degraded since", c.get("degraded_since")),
                     ("Pending replay", c.get("pending_replay")),
                     ("Journal errors", c.get("journal_errors")),
                     ("Last error", c.get("last_error"))])
    video = _rows([("Provider", v.get("provider")),
                   ("Render queue (in flight)", v.get("in_flight")),
                   ("Generations", v.get("generations")), ("Failures", v.get("failures")),
                   ("Deadline exceeded", v.get("deadline_exceeded")), ("Busy", v.get("busy")),
                   ("Mean render seconds", v.get("mean_render_seconds")),
                   ("Last failure", v.get("last_error"))])
    token = escape(csrf)
    items = "".join(
        f"<li>{escape(r['sentence'])} <code>{escape(r['id'][:12])}</code>"
        f"<form class=\"inline\" method=\"post\" action=\"/admin/takedown\">"
        f"<input type=\"hidden\" name=\"csrf\" value=\"{token}\">"
        f"<input type=\"hidden\" name=\"id\" value=\"{escape(r['id'])}\">"
        f"<button type=\"submit\" aria-label=\"Take down {escape(r['id'][:12])}\">Take down"
        "</button></form></li>" for r in w["recent"])
    count = f"{w['count']}+" if w["more"] else str(w["count"])
    body = (
        (_notice(notice, error) if notice else "")
        + f"<section><h2>Cache</h2><dl>{cache}</dl></section>"
        + f"<section><h2>Redis breaker</h2><dl>{breaker}</dl></section>"
        + f"<section><h2>Videos</h2><dl>{video}</dl></section>"
        + f"<section><h2>Winners ({escape(count)})</h2>"
        + (f"<ol>{items}</ol>" if items else "<p>No winners in the gallery.</p>")
        + "</section>"
        + "<form method=\"post\" action=\"/admin/logout\">"
        f"<input type=\"hidden\" name=\"csrf\" value=\"{token}\">"
        "<button type=\"submit\">Sign out</button></form>"
        + f"<p><small>Refreshes every {REFRESH_SECONDS} s.</small></p>")
    return _page(body, status, refresh=True)


# --- guards -----------------------------------------------------------------------------------
def same_origin(request: Request) -> bool:
    """A browser names the site a POST comes from; it must be this host. Without the header
    (curl, old browsers) SameSite=Strict and the form token still stand. Only the host is
    compared: behind a TLS proxy that is not trusted (FORWARDED_ALLOW_IPS) the app sees http
    while the browser says https. `Origin: null` (sandboxed, opaque) is refused."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.url.netloc


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (first value of each field); ApiError otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise ApiError(400, "bad_request", "expected a form (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "too_large", "form too large")
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                          max_num_fields=8)
    except ValueError:
        raise ApiError(400, "bad_request", "too many form fields") from None
    return {name: values[0] for name, values in fields.items()}


def _session(request: Request, settings: Settings) -> str | None:
    value = request.cookies.get(COOKIE)
    return value if session_valid(settings.admin_token, value) else None


# --- routes -----------------------------------------------------------------------------------
router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def admin_page(request: Request, settings: SettingsDep, limits: RateLimitsDep,
                     cache: CacheDep, service: ServiceDep) -> Response:
    if not settings.admin_token:
        return _disabled()
    try:
        await enforce(limits, "http_admin", client_address(request), settings.http_rate_limit_admin)
    except ApiError as exc:
        return _error_page(exc)
    session = _session(request, settings)
    if session is None:
        page = login_page()
        if COOKIE in request.cookies:  # expired, tampered or from an older ADMIN_TOKEN
            page.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return page
    return dashboard(await collect(cache, service), csrf_token(settings.admin_token, session))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep, limits: RateLimitsDep) -> Response:
    """The form twin of `require_admin`: same limits, same failure counter."""
    if not settings.admin_token:
        return _disabled()
    if not same_origin(request):
        return _page(_notice("Cross-site sign-in refused.", error=True), 403)
    address = client_address(request)
    failures = settings.admin_auth_failure_limit
    try:
        await enforce(limits, "http_admin", address, settings.http_rate_limit_admin)
        if not await limits.test(FAILED_AUTH, address, failures):
            wait = await limits.retry_after(FAILED_AUTH, address, failures)
            raise ApiError(429, "rate_limited", f"too many wrong admin tokens; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        form = await read_form(request)
    except ApiError as exc:
        return login_page(str(exc.detail), exc.status_code, dict(exc.headers or {}))
    if not form_token_matches(form.get("token", ""), settings.admin_token):
        await limits.hit(FAILED_AUTH, address, failures)
        return login_page("Wrong admin token.", 401)
    expires = int(time.time()) + SESSION_SECONDS
    response = RedirectResponse("/admin", status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(COOKIE, sign_session(settings.admin_token, expires),
                        max_age=SESSION_SECONDS, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    if not same_origin(request):
        return _page(_notice("Cross-site sign-out refused.", error=True), 403)
    response = RedirectResponse("/admin", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


@router.post("/takedown", response_class=HTMLResponse)
async def takedown(request: Request, settings: SettingsDep, limits: RateLimitsDep,
                   cache: CacheDep, service: ServiceDep) -> Response:
    if not settings.admin_token:
        return _disabled()
    session = _session(request, settings)
    if session is None:
        return login_page("Sign in first.", 401)
    csrf = csrf_token(settings.admin_token, session)
    try:
        await enforce(limits, "http_admin", client_address(request), settings.http_rate_limit_admin)
        form = await read_form(request)
        if not same_origin(request) or not hmac.compare_digest(
                form.get("csrf", "").encode("utf-8", "replace"), csrf.encode("ascii")):
            raise ApiError(403, "forbidden", "cross-site request refused")
        sha = form.get("id", "").strip()
        await winners_api.take_down(sha, None, service)  # the DELETE route's own code
    except ApiError as exc:
        return dashboard(await collect(cache, service), csrf, str(exc.detail), error=True,
                         status=exc.status_code)
    return dashboard(await collect(cache, service), csrf, f"Taken down: {sha}")


@router.get("/stats.json")
async def stats_json(request: Request, settings: SettingsDep, limits: RateLimitsDep,
                     cache: CacheDep, service: ServiceDep) -> JSONResponse:
    if not settings.admin_token:
        return error_response(403, "admin_disabled",
                              "admin operations are disabled: set ADMIN_TOKEN to enable them")
    await enforce(limits, "http_admin", client_address(request), settings.http_rate_limit_admin)
    if _session(request, settings) is None:
        return error_response(401, "unauthorized", "sign in at /admin first")
    return JSONResponse(await collect(cache, service), headers={"Cache-Control": "no-store"})
