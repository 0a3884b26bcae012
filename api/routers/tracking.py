"""Public routes behind signed links in messages (no API key; the token names the message):
open pixel, click redirect, the unsubscribe page (GET shows a confirm button, so link scanners
do not unsubscribe), RFC 8058 one-click unsubscribe (POST revokes the channel's consent at
once) and the preference centre (GET shows the person's choices, POST saves them). A GET never
changes consent. The pages speak the profile's language (da, sv, en)."""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import pages
from api.deps import RuntimeDep, SessionDep
from rejse.errors import DomainError, NotFound, Unprocessable
from rejse.messaging import preferences, service, tokens
from rejse.models.messaging import Message
from rejse.runtime import Runtime

router = APIRouter(tags=["tracking"])

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private"}


def _verify(runtime: Runtime, token: str, kind: str) -> tuple[str, int | None]:
    try:
        return tokens.verify(runtime.settings.secret_key, token, kind)
    except tokens.InvalidToken:
        raise NotFound("unknown or invalid link", field="token") from None


@router.get("/t/o/{token}", include_in_schema=False)
def open_pixel(token: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    try:
        message_id, _ = tokens.verify(runtime.settings.secret_key, token, "o")
    except tokens.InvalidToken:
        message_id = None
    if message_id is not None and service.record_open(session, message_id=message_id) is not None:
        session.commit()
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}", include_in_schema=False)
def click(token: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    message_id, index = _verify(runtime, token, "c")
    url = service.record_click(session, message_id=message_id, index=index or 0)
    if url is None:
        raise NotFound("unknown or expired link", field="token")
    session.commit()
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers=pages.HEADERS)


def _preferences_link(runtime: Runtime, message_id: str) -> str:
    # relative to /u/{token}, so it also works behind a proxy that serves the API under a prefix
    return f"../p/{tokens.sign(runtime.settings.secret_key, 'p', message_id)}"


@router.get("/u/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe_page(token: str, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    message_id, _ = _verify(runtime, token, "u")
    row = session.get(Message, message_id)
    if row is None:
        raise NotFound("unknown or expired link", field="token")
    return _page(
        pages.unsubscribe_confirm(
            lang=preferences.message_locale(session, message_id=message_id),
            channel=row.channel,
            preferences=_preferences_link(runtime, message_id),
        )
    )


@router.post("/u/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe(token: str, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click` form body) and the page's button."""
    message_id, _ = _verify(runtime, token, "u")
    row = service.unsubscribe(session, message_id=message_id)
    if row is None:
        raise NotFound("unknown or expired link", field="token")
    session.commit()
    return _page(
        pages.unsubscribed(
            lang=preferences.message_locale(session, message_id=message_id),
            channel=row.channel,
            preferences=_preferences_link(runtime, message_id),
        )
    )


FORM_MAX_BYTES = 4096
CHECKBOXES = (*preferences.CHANNELS, "unsubscribe_all")


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The urlencoded body of a page's form (small: a few checkboxes and the save button)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX_BYTES:
            raise DomainError(
                f"the form is larger than {FORM_MAX_BYTES} bytes", field="body", status_code=413
            )
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise Unprocessable("the form must be UTF-8, urlencoded", field="body") from None


FormDep = Annotated[dict[str, list[str]], Depends(form_fields)]


def _choices(form: dict[str, list[str]]) -> tuple[dict[str, bool], bool]:
    """(receiving per channel, all marketing) from the form; a ticked box sends `on`, an
    unticked one nothing. Without the save button's field the post is not the form's."""
    if form.get("save") != ["1"]:
        raise Unprocessable("send the form with its save button (save=1)", field="save")
    for name in CHECKBOXES:
        if form.get(name, []) not in ([], ["on"]):
            raise Unprocessable(f"{name} is a checkbox: 'on' or absent", field=name)
    receiving = {channel: channel in form for channel in preferences.CHANNELS}
    return receiving, "unsubscribe_all" not in form


@router.get("/p/{token}", include_in_schema=False, response_class=HTMLResponse)
def preference_centre(token: str, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    message_id, _ = _verify(runtime, token, "p")
    prefs = preferences.load(
        session, message_id=message_id, require_opt_in=runtime.settings.message_require_opt_in
    )
    if prefs is None:
        raise NotFound("unknown or expired link", field="token")
    return _page(pages.preference_centre(prefs, saved=False))


@router.post("/p/{token}", include_in_schema=False, response_class=HTMLResponse)
def save_preferences(
    token: str, runtime: RuntimeDep, session: SessionDep, form: FormDep
) -> HTMLResponse:
    """Save the preference centre's form: each switched choice is an explicit decision."""
    message_id, _ = _verify(runtime, token, "p")
    receiving, all_marketing = _choices(form)
    prefs = preferences.save(
        session,
        message_id=message_id,
        receiving=receiving,
        all_marketing=all_marketing,
        require_opt_in=runtime.settings.message_require_opt_in,
    )
    if prefs is None:
        raise NotFound("unknown or expired link", field="token")
    session.commit()
    return _page(pages.preference_centre(prefs, saved=True))
