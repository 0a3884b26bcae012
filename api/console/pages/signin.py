"""Sign-in with an API key, sign-out, the language choice and the console's front door."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.console import i18n, kit
from api.console.kit import AnyUser, ConsoleRoute, CsrfForm
from rejse.console.sessions import LANGUAGES, end_session, set_language, start_session
from rejse.errors import DomainError
from rejse.inputs import Text

router = APIRouter(route_class=ConsoleRoute)

_KEY_ERRORS = {401: "err_key_unknown", 403: "err_key_ingest"}


@router.get("")
def front_door(request: Request) -> Response:
    """/console: the signed-in user's first page, or the sign-in page."""
    try:
        user = kit.signed_in(request)
    except kit.NotSignedIn:
        return kit.redirect(f"{kit.PREFIX}/sign-in", request)
    return kit.redirect(kit.home_of(user), request)


@router.get("/sign-in")
def sign_in_page(
    request: Request,
    next_: Annotated[Text | None, Query(alias="next", max_length=2000)] = None,
    ended: Annotated[int, Query(ge=0, le=1)] = 0,
    out: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    return kit.render(
        request,
        "sign_in.html",
        {"next": kit.safe_next(next_) or "", "ended": bool(ended), "signed_out": bool(out)},
    )


@router.post("/sign-in")
def sign_in(request: Request, form: CsrfForm) -> Response:
    raw_key = form.get("api_key").strip()
    target = kit.safe_next(form.get("next"))
    ctx = {"next": target or "", "ended": False, "signed_out": False}
    if not raw_key:
        return kit.form_error(
            request, "sign_in.html", ctx, {"api_key": kit.text(request, "err_key_required")}
        )
    chosen = request.cookies.get(kit.LANGUAGE_COOKIE)
    try:
        with kit.db(request) as session:
            token = start_session(
                session,
                raw_key=raw_key,
                language=chosen if chosen in LANGUAGES else None,
                idle=dt.timedelta(minutes=kit.runtime_of(request).settings.console_idle_minutes),
            )
            session.commit()
    except DomainError as exc:
        message = kit.text(request, _KEY_ERRORS.get(exc.status_code, "err_key_unknown"))
        return kit.form_error(
            request, "sign_in.html", ctx, {"api_key": message}, status_code=exc.status_code
        )
    response = kit.redirect(target or kit.PREFIX, request)
    kit.set_cookie(request, response, kit.SESSION_COOKIE, token)
    response.delete_cookie(kit.PRE_COOKIE, path=kit.PREFIX)
    return response


@router.post("/sign-out")
def sign_out(request: Request, user: AnyUser, form: CsrfForm) -> Response:
    with kit.db(request) as session:
        end_session(session, token=request.cookies.get(kit.SESSION_COOKIE, ""))
        session.commit()
    response = kit.redirect(f"{kit.PREFIX}/sign-in?out=1", request)
    response.delete_cookie(kit.SESSION_COOKIE, path=kit.PREFIX, httponly=True, samesite="strict")
    return response


@router.post("/language")
def choose_language(request: Request, form: CsrfForm) -> Response:
    """The language of the console: stored in the session when signed in, else in a cookie."""
    language = form.get("language")
    if language not in i18n.MESSAGES:
        raise kit.PageError(422, field="language", message=", ".join(LANGUAGES))
    back = kit.safe_next(form.get("next")) or kit.PREFIX
    try:
        user = kit.signed_in(request)
    except kit.NotSignedIn:
        user = None
    if user is not None:
        with kit.db(request) as session:
            set_language(session, session_id=user.session_id, language=language)
            session.commit()
    response = kit.redirect(back, request)
    kit.set_cookie(request, response, kit.LANGUAGE_COOKIE, language)
    return response
