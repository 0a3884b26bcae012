"""Public tracking routes, authenticated by signed tokens (no API key): open pixel, click
redirect, unsubscribe page (GET shows a confirm button, so link scanners do not unsubscribe) and
RFC 8058 one-click unsubscribe (POST revokes the channel's consent at once)."""

from __future__ import annotations

import base64
import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep, SessionDep
from rejse.errors import NotFound
from rejse.messaging import service, tokens
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


PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport"\n'
    'content="width=device-width, initial-scale=1"><title>{title}</title></head>\n'
    '<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;'
    'padding:0 16px">\n'
    '<h1 style="font-size:20px">{title}</h1>{body}</body></html>'
)


@router.get("/u/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe_page(token: str, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    message_id, _ = _verify(runtime, token, "u")
    row = session.get(Message, message_id)
    if row is None:
        raise NotFound("unknown or expired link", field="token")
    body = (
        f"<p>Stop receiving {html.escape(row.channel)} messages like this one?</p>"
        f'<form method="post" action="/u/{html.escape(token)}"><button type="submit" '
        'style="padding:10px 20px">Unsubscribe</button></form>'
    )
    return HTMLResponse(PAGE.format(title="Unsubscribe", body=body), headers=NO_STORE)


@router.post("/u/{token}", include_in_schema=False, response_class=HTMLResponse)
def unsubscribe(token: str, runtime: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click` form body) and the page's button."""
    message_id, _ = _verify(runtime, token, "u")
    if service.unsubscribe(session, message_id=message_id) is None:
        raise NotFound("unknown or expired link", field="token")
    session.commit()
    return HTMLResponse(
        PAGE.format(
            title="You are unsubscribed",
            body="<p>You will not receive these messages any more.</p>",
        ),
        headers=NO_STORE,
    )
