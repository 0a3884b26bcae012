"""The message log and development outbox: `GET /api/messages?profile_id=&journey=&channel=`.

Bodies are shown with their tracking tokens redacted (`/u/…`, `/p/…`, `/t/c/…`): a reader of
the log (an analyst key) sees what was sent but cannot unsubscribe, change the preferences of,
or click for its recipient."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ReadDep, RuntimeDep, SessionDep
from api.errors import NOT_FOUND
from rejse.messaging import service
from rejse.models.messaging import Message
from rejse.runtime import Runtime

router = APIRouter(prefix="/api/messages", tags=["messages"])


class MessagePublic(BaseModel):
    id: str
    profile_id: str
    channel: str
    template: str
    template_version: int | None
    locale: str | None
    transactional: bool
    journey_key: str | None
    journey_version: int | None
    step_id: str | None
    status: str
    reason: str | None
    to_address: str | None
    subject: str | None
    body_text: str | None
    body_html: str | None
    attempts: int
    created_at: dt.datetime
    sent_at: dt.datetime | None
    opened_at: dt.datetime | None
    clicked_at: dt.datetime | None
    retry_at: dt.datetime | None
    open_count: int
    click_count: int


def _public(row: Message, runtime: Runtime) -> MessagePublic:
    out = MessagePublic.model_validate(row, from_attributes=True)
    base = runtime.settings.effective_public_url
    return out.model_copy(
        update={
            name: service.redact_tokens(getattr(out, name), base_url=base)
            for name in ("subject", "body_text", "body_html")
        }
    )


@router.get("", response_model=list[MessagePublic])
def list_messages(
    session: SessionDep,
    runtime: RuntimeDep,
    _: ReadDep,
    profile_id: Annotated[str | None, Query(max_length=64)] = None,
    journey: Annotated[str | None, Query(max_length=200)] = None,
    channel: Literal["email", "sms", "in_app", "webhook"] | None = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[MessagePublic]:
    rows = service.list_messages(
        session,
        profile_id=profile_id,
        journey=journey,
        channel=channel,
        status=status,
        limit=limit,
        offset=offset,
    )
    return [_public(r, runtime) for r in rows]


@router.get("/{message_id}", response_model=MessagePublic, responses=NOT_FOUND)
def get_message(
    message_id: str, session: SessionDep, runtime: RuntimeDep, _: ReadDep
) -> MessagePublic:
    return _public(service.get_message(session, message_id), runtime)
