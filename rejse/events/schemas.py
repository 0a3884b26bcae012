"""Segment-spec message schemas (https://segment.com/docs/connections/spec/common/)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


def _id_to_str(value: Any) -> Any:
    # Segment libraries send numeric ids as numbers; they are ids, not quantities.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Ident = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=255)]
MessageType = Literal["track", "identify", "page", "alias"]


class SegmentMessageBase(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    userId: Ident | None = None
    anonymousId: Ident | None = None
    messageId: str | None = Field(default=None, min_length=1, max_length=255)
    timestamp: dt.datetime | None = None
    sentAt: dt.datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)


class TrackIn(SegmentMessageBase):
    type: Literal["track"] | None = None
    event: str = Field(min_length=1, max_length=200)


class IdentifyIn(SegmentMessageBase):
    type: Literal["identify"] | None = None


class PageIn(SegmentMessageBase):
    type: Literal["page"] | None = None
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)


class AliasIn(SegmentMessageBase):
    type: Literal["alias"] | None = None
    previousId: Ident


class BatchItem(SegmentMessageBase):
    type: MessageType
    event: str | None = Field(default=None, min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    previousId: Ident | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: list[dict[str, Any]] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    sentAt: dt.datetime | None = None


class IngestAccepted(BaseModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events whose messageId was already stored")


SINGLE_SCHEMAS: dict[str, type[SegmentMessageBase]] = {
    "track": TrackIn, "identify": IdentifyIn, "page": PageIn, "alias": AliasIn,
}
