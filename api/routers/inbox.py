"""In-app inbox for a webshop or netbank backend that shows messages instead of emailing them.

Role `ingest`: the backend that sends events fetches its user's inbox server-side with the same
key (the key never reaches a browser). `user_id` is the profile's `user_id` identifier."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import IngestDep, SessionDep
from api.errors import responses
from rejse.messaging import service
from rejse.models.messaging import Message

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


class InboxMessage(BaseModel):
    id: str
    template: str
    subject: str | None
    text: str | None
    html: str | None
    sent_at: dt.datetime | None
    read_at: dt.datetime | None


def _public(row: Message) -> InboxMessage:
    return InboxMessage(
        id=row.id,
        template=row.template,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        sent_at=row.sent_at,
        read_at=row.read_at,
    )


@router.get("/{user_id}", response_model=list[InboxMessage])
def get_inbox(
    user_id: str,
    session: SessionDep,
    _: IngestDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InboxMessage]:
    return [
        _public(r) for r in service.inbox(session, user_id=user_id, unread_only=unread, limit=limit)
    ]


@router.post(
    "/{user_id}/{message_id}/read",
    response_model=InboxMessage,
    responses=responses((404, "No such message in this user's inbox")),
)
def mark_read(user_id: str, message_id: str, session: SessionDep, _: IngestDep) -> InboxMessage:
    row = service.mark_read(session, user_id=user_id, message_id=message_id)
    session.commit()
    return _public(row)
