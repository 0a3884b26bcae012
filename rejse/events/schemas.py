"""Segment-spec message schemas (https://segment.com/docs/connections/spec/common/)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from rejse.events.values import NUL_IN_TEXT, find_unstorable

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


def _id_to_str(value: Any) -> Any:
    # Segment libraries send numeric ids as numbers; they are ids, not quantities.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL characters; no real id or name contains one.
    if "\x00" in value:
        raise PydanticCustomError(UNSTORABLE, NUL_IN_TEXT, {"path": ""})
    return value


UNSTORABLE = "unstorable_value"  # error type: the API answers 400 for these, 422 otherwise


def _storable(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    # Skipped when the raw body cannot hold such a value (see `might_be_unstorable`).
    if not (info.context or {}).get("shallow"):
        problem = find_unstorable(value)
        if problem is not None:
            raise PydanticCustomError(UNSTORABLE, problem[1], {"path": problem[0]})
    return value


def check_json(value: Any, path: str = "") -> None:
    """Raise ValueError ("<path>: <problem>") for a value a JSON column cannot store (see
    `rejse.events.values`, whose `check_storable` raises the 400 `DomainError` instead)."""
    problem = find_unstorable(value, path=path)
    if problem is not None:
        raise ValueError(f"{problem[0] or 'value'}: {problem[1]}")


Text = Annotated[str, AfterValidator(_no_nul)]
Ident = Annotated[
    str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=255), AfterValidator(_no_nul)
]
MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]
MESSAGE_TYPES: tuple[str, ...] = get_args(MessageType)


class SegmentMessageBase(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    userId: Ident | None = None
    anonymousId: Ident | None = None
    messageId: Text | None = Field(default=None, min_length=1, max_length=255)
    timestamp: dt.datetime | None = None
    sentAt: dt.datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)

    _portable_json = field_validator("context", "properties", "traits")(_storable)


class TrackIn(SegmentMessageBase):
    type: Literal["track"] | None = None
    event: Text = Field(min_length=1, max_length=200)


class IdentifyIn(SegmentMessageBase):
    type: Literal["identify"] | None = None


class PageIn(SegmentMessageBase):
    type: Literal["page"] | None = None
    name: Text | None = Field(default=None, max_length=200)
    category: Text | None = Field(default=None, max_length=200)


class ScreenIn(SegmentMessageBase):
    """A mobile app's page view: `name` and `category` are stored in `properties`."""

    type: Literal["screen"] | None = None
    name: Text | None = Field(default=None, max_length=200)
    category: Text | None = Field(default=None, max_length=200)


class GroupIn(SegmentMessageBase):
    """The person belongs to the group (an account, a company); `traits` are the group's."""

    type: Literal["group"] | None = None
    groupId: Ident


class AliasIn(SegmentMessageBase):
    type: Literal["alias"] | None = None
    previousId: Ident


class BatchItem(SegmentMessageBase):
    type: MessageType
    event: Text | None = Field(default=None, min_length=1, max_length=200)
    name: Text | None = Field(default=None, max_length=200)
    category: Text | None = Field(default=None, max_length=200)
    previousId: Ident | None = None
    groupId: Ident | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: list[BatchItem] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    sentAt: dt.datetime | None = None

    _portable_json = field_validator("context")(_storable)


class BatchEnvelope(BaseModel):
    """A batch with its messages unvalidated: each one is then validated on its own, so one
    bad message is refused alone."""

    model_config = ConfigDict(extra="ignore")

    batch: list[Any] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    sentAt: dt.datetime | None = None

    _portable_json = field_validator("context")(_storable)


class IngestAccepted(BaseModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events whose messageId was already stored")


class RejectedMessage(BaseModel):
    index: int = Field(description="position of the message in `batch`")
    field: str = Field(description="dotted path, e.g. `batch.3.properties.total`")
    message: str


class IngestResult(BaseModel):
    """The answer of every `/v1` call: 200 with `success` is what Segment's own API answers and
    what the Segment and RudderStack SDKs count as delivered (they retry anything else)."""

    success: bool = Field(description="always true: the accepted messages are stored")
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events whose messageId was already stored")
    rejected: int = Field(description="messages of the batch refused (see `errors`)")
    errors: list[RejectedMessage] = Field(
        default_factory=list, description="one entry per problem of a refused message"
    )


SINGLE_SCHEMAS: dict[str, type[SegmentMessageBase]] = {
    "track": TrackIn,
    "identify": IdentifyIn,
    "page": PageIn,
    "screen": ScreenIn,
    "group": GroupIn,
    "alias": AliasIn,
}
