"""What every console page uses (docs/console.md, "Adding a page"):

- `require(*roles)`: a dependency giving the signed-in `ConsoleUser` (key id, role, rep id),
  303 to the sign-in page without a session, a 403 page for another role. `ReadUser`,
  `WriteUser`, `SalesUser`, `AdminUser`, `AnyUser` are the usual ones.
- `CsrfForm`: the posted form (urlencoded, at most 1 MB), its CSRF token checked (403 page
  without it), NUL refused (422 naming the field).
- `render(request, "x.html", ctx)`: a page in the layout, in the user's language, with `t`,
  `user`, `csrf`, `nav`, `errors` and `values` in the template's context.
- `form_error(request, "x.html", ctx, {"field": "message"})`: the same page again, 422, each
  message next to its field (the `field` macro in `_macros.html`).
- `ConsoleRoute`: the router's route class; a DomainError, a validation error or an
  HTTPException in a page becomes an error page (never JSON, never a 500 page).
- `add_nav(...)`: a page's entry in the navigation, shown to the roles that may open it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session

from api.console import i18n
from api.deps import ADMIN, READ, SALES, WRITE
from rejse.analytics import charts
from rejse.console.sessions import SignedIn, csrf_ok, csrf_token, resolve_session
from rejse.errors import DomainError
from rejse.inputs import MAX_CONTROL_PLANE_BODY
from rejse.roles import Role
from rejse.runtime import Runtime

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
PREFIX = "/console"
SESSION_COOKIE = "rejse_console"
# Before sign-in: a random value whose HMAC is the sign-in form's CSRF token.
PRE_COOKIE = "rejse_console_pre"
CSRF_FIELD = "csrf_token"
LANGUAGE_COOKIE = "rejse_console_lang"  # the language chosen before sign-in
MAX_FORM_BYTES = MAX_CONTROL_PLANE_BODY

# Every console answer: only our own scripts, styles and images; forms post only back here;
# no framing; no referrer leaves with an identifier in the URL.
HEADERS = {
    "Cache-Control": "no-store, private",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex",
}

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# ----------------------------------------------------------------------------- who is signed in


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in key of a console request."""

    key_id: str
    role: Role
    rep_id: str | None
    language: str
    csrf: str  # the token every form of this session carries
    session_id: str

    def can(self, *roles: Role) -> bool:
        """Whether the user's role is one of `roles` (admin always is)."""
        return self.role is Role.admin or self.role in roles

    @property
    def can_write(self) -> bool:
        """Marketer's changes (journeys, audiences, templates): not for analysts."""
        return self.can(*WRITE)


class NotSignedIn(Exception):
    """No valid session: GET goes to the sign-in page, anything else gets a 401 page."""


class PageError(Exception):
    """An error page: `status` with the catalogue text `key` (and a field, if one is to blame)."""

    def __init__(
        self, status: int, key: str | None = None, *, field: str | None = None, message: str = ""
    ) -> None:
        super().__init__(message or key or str(status))
        self.status = status
        self.key = key or f"error_{status}"
        self.field = field
        self.message = message


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def db(request: Request) -> Session:
    """A database session for a page (`with kit.db(request) as session:`); rows stay readable
    after commit. The page commits what it wants kept."""
    return Session(runtime_of(request).engine, expire_on_commit=False)


def language_of(request: Request) -> str:
    """The session's chosen language, else the language cookie (before sign-in), else the
    browser's Accept-Language, else Danish."""
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    if user is not None:
        return user.language
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in i18n.MESSAGES:
        return chosen
    return i18n.from_accept_language(request.headers.get("accept-language")) or (
        i18n.DEFAULT_LANGUAGE
    )


def signed_in(request: Request) -> ConsoleUser:
    """The session of the request's cookie, checked with its key on every request (one query):
    expired, signed out or revoked is NotSignedIn."""
    cached: ConsoleUser | None = getattr(request.state, "console_user", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise NotSignedIn
    runtime = runtime_of(request)
    idle = runtime.settings.console_idle_minutes
    with Session(runtime.engine) as session:
        found: SignedIn | None = resolve_session(
            session, token=token, idle=dt.timedelta(minutes=idle)
        )
        session.commit()
    if found is None:
        request.state.console_session_ended = True
        raise NotSignedIn
    browser = i18n.from_accept_language(request.headers.get("accept-language"))
    user = ConsoleUser(
        key_id=found.key_id,
        role=found.role,
        rep_id=found.rep_id,
        language=found.language or browser or i18n.DEFAULT_LANGUAGE,
        csrf=csrf_token(token, secret=runtime.settings.secret_key),
        session_id=found.session_id,
    )
    request.state.console_user = user
    return user


UserCheck = Callable[[Request], ConsoleUser]


def require(*roles: Role) -> UserCheck:
    """Dependency factory: a signed-in user whose role is one of `roles` (admin always is).
    `check.console_roles` is read by the console's auth matrix (tests/console)."""
    allowed = frozenset(roles) | {Role.admin}

    def check(request: Request) -> ConsoleUser:
        user = signed_in(request)
        if user.role not in allowed:
            raise PageError(403)
        return user

    check.console_roles = allowed  # type: ignore[attr-defined]  # read by the auth matrix
    return check


CONSOLE_ROLES = (Role.marketer, Role.analyst, Role.sales)  # everyone but ingest
AnyUser = Annotated[ConsoleUser, Depends(require(*CONSOLE_ROLES))]
ReadUser = Annotated[ConsoleUser, Depends(require(*READ))]
WriteUser = Annotated[ConsoleUser, Depends(require(*WRITE))]
SalesUser = Annotated[ConsoleUser, Depends(require(*SALES))]
AdminUser = Annotated[ConsoleUser, Depends(require(*ADMIN))]


# ----------------------------------------------------------------------------- forms


@dataclass(frozen=True)
class FormData:
    """A posted form's fields (the last value of a repeated name; `all(name)` for every one)."""

    items: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        found = default
        for key, value in self.items:
            if key == name:
                found = value
        return found

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.items if key == name]

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.items)

    def values(self) -> dict[str, str]:
        """Every field but the CSRF token, to refill a form shown again."""
        return {key: value for key, value in self.items if key != CSRF_FIELD}


def _csrf_source(request: Request) -> str:
    """What the request's CSRF token is derived from: the session cookie, or before sign-in
    the pre-session cookie."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRE_COOKIE) or ""


async def read_form(request: Request) -> FormData:
    """The posted urlencoded form, at most MAX_FORM_BYTES, with a valid CSRF token."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 18 or int(declared) > MAX_FORM_BYTES):
        raise PageError(413)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise PageError(413)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    items: list[tuple[str, str]] = []
    if media == "application/x-www-form-urlencoded" and body:
        try:
            items = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            raise PageError(400, field="body", message="not UTF-8 form data") from None
    form = FormData(tuple(items))
    source = _csrf_source(request)
    secret = runtime_of(request).settings.secret_key
    if not source or not csrf_ok(source, form.get(CSRF_FIELD), secret=secret):
        raise PageError(403, "error_403_csrf")
    for name, value in form.items:
        if "\x00" in value or "\x00" in name:
            raise PageError(422, field=name.replace("\x00", ""), message=text(request, "err_nul"))
    return form


CsrfForm = Annotated[FormData, Depends(read_form)]


# ----------------------------------------------------------------------------- navigation


@dataclass(frozen=True, order=True)
class NavItem:
    order: int
    text_key: str = field(compare=False)
    href: str = field(compare=False)
    roles: frozenset[Role] = field(compare=False)


NAV: list[NavItem] = []


def add_nav(order: int, text_key: str, href: str, roles: Iterable[Role]) -> None:
    """A page's entry in the navigation: ordered by `order`, shown to `roles` (and admin)."""
    NAV.append(NavItem(order, text_key, href, frozenset(roles) | {Role.admin}))
    NAV.sort()


def nav_for(user: ConsoleUser | None) -> list[NavItem]:
    return [] if user is None else [item for item in NAV if user.role in item.roles]


def home_of(user: ConsoleUser) -> str:
    """Where a user lands after sign-in: the first page of the navigation their role sees."""
    items = nav_for(user)
    return items[0].href if items else f"{PREFIX}/sign-in"


# ----------------------------------------------------------------------------- charts


@functools.lru_cache(maxsize=256)
def _svg(spec_json: str) -> bytes:
    return charts.render(json.loads(spec_json), "svg")


def chart_svg(spec: Mapping[str, Any]) -> Response:
    """A chart (a `rejse.analytics.charts` spec) as an SVG answer. Drawing one takes a good
    part of a second, so pages show charts as `<img>` of such a route (beside a table of the
    same numbers) and the SVG of the same spec is drawn once."""
    body = _svg(json.dumps(spec, sort_keys=True, default=str))
    return Response(body, media_type="image/svg+xml", headers=HEADERS)


# ----------------------------------------------------------------------------- rendering


def text(request: Request, key: str, /, **values: object) -> str:
    return i18n.text(language_of(request), key, **values)


def render(
    request: Request,
    template: str,
    ctx: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """`template` (from api/console/templates) in the user's language. The context always
    holds `t(key, **values)`, `lang`, `user` (or None), `csrf_token` (for forms: use the
    `csrf()` macro), `nav`, `errors` (field -> message) and `values` (field -> value)."""
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    if user is None and request.cookies.get(SESSION_COOKIE):
        try:  # a public page (sign-in, an error) still shows who is signed in
            user = signed_in(request)
        except NotSignedIn:
            user = None
    lang = language_of(request)
    new_pre: str | None = None
    if user is not None:
        csrf = user.csrf
    else:
        # The same source `read_form` checks against: the session cookie (even a stale one,
        # so that signing in again works), else the pre-session cookie, made here if missing.
        source = _csrf_source(request)
        if not source:
            source = new_pre = secrets.token_urlsafe(32)
        csrf = csrf_token(source, secret=runtime_of(request).settings.secret_key)
    context: dict[str, Any] = {
        "t": functools.partial(i18n.text, lang),
        "lang": lang,
        "languages": i18n.LANGUAGE_NAMES,
        "user": user,
        "csrf_token": csrf,  # the `csrf()` macro of _macros.html writes the hidden field
        "csrf_field": CSRF_FIELD,
        "nav": nav_for(user),
        "current": request.url.path,
        "prefix": PREFIX,
        "errors": {},
        "values": {},
        "partial": request.headers.get("hx-request") == "true",
    }
    context.update(ctx or {})
    html = templates.get_template(template).render(context)
    response = HTMLResponse(html, status_code=status_code, headers={**HEADERS, **(headers or {})})
    if new_pre is not None:
        set_cookie(request, response, PRE_COOKIE, new_pre)
    return response


def form_error(
    request: Request,
    template: str,
    ctx: Mapping[str, Any],
    errors: Mapping[str, str],
    *,
    status_code: int = 422,
) -> HTMLResponse:
    """The form's page again with `errors` (field name -> message) beside their fields."""
    return render(request, template, {**ctx, "errors": dict(errors)}, status_code=status_code)


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, Secure over TLS, for /console only, ending
    with the browser session (the server ends idle sessions itself)."""
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def redirect(url: str, request: Request | None = None) -> Response:
    """303 to `url`; for an htmx request, the `HX-Redirect` header (htmx then navigates)."""
    if request is not None and request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={**HEADERS, "HX-Redirect": url})
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def safe_next(value: str | None) -> str | None:
    """A `next` target only when it is a console path on this host."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return None


def error_page(request: Request, error: PageError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": error.status, "key": error.key, "field": error.field, "message": error.message},
        status_code=error.status,
    )


def _not_signed_in(request: Request) -> Response:
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = f"{PREFIX}/sign-in?next={quote(target, safe='')}"
        if getattr(request.state, "console_session_ended", False):
            url += "&ended=1"
        return redirect(url, request)
    return error_page(request, PageError(401))


_DOMAIN_STATUSES = {400, 401, 403, 404, 409, 413, 422, 503}


class ConsoleRoute(APIRoute):
    """Every console route: errors become pages in the layout (never JSON, never a 500)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                return _not_signed_in(request)
            except PageError as exc:
                return error_page(request, exc)
            except DomainError as exc:
                status = exc.status_code if exc.status_code in _DOMAIN_STATUSES else 400
                return error_page(request, PageError(status, field=exc.field, message=exc.message))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                loc = [str(part) for part in first.get("loc", ())[1:]]
                return error_page(
                    request,
                    PageError(422, field=".".join(loc) or None, message=first.get("msg", "")),
                )
            except HTTPException as exc:
                status = exc.status_code if exc.status_code in _DOMAIN_STATUSES else 400
                return error_page(request, PageError(status, message=str(exc.detail)))

        return handle
