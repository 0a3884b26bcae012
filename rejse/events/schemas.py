"""Segment-spec message schemas (https://segment.com/docs/connections/spec/common/)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

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
        raise ValueError("must not contain NUL characters")
    return value


def check_json(value: Any, path: str = "") -> None:
    """Reject what a JSON column cannot store portably: NaN/Infinity and NUL characters."""
    stack = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, float) and not math.isfinite(current):
            raise ValueError(f"{where or 'value'}: NaN and Infinity are not allowed")
        if isinstance(current, str) and "\x00" in current:
            raise ValueError(f"{where or 'value'}: NUL characters are not allowed")
        if isinstance(current, dict):
            for key, item in current.items():
                if "\x00" in key:
                    raise ValueError(f"{where or 'value'}: NUL characters are not allowed in keys")
                stack.append((item, f"{where}.{key}" if where else key))
        elif isinstance(current, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(current))


def needs_deep_check(body: bytes) -> bool:
    """Valid JSON escapes NUL as \\u0000 and has no NaN/Infinity tokens; only a body that
    contains one of these byte sequences (maybe inside a string) needs the per-value walk."""
    return b"\\u0000" in body or b"NaN" in body or b"Infinity" in body


Text = Annotated[str, AfterValidator(_no_nul)]
Ident = Annotated[
    str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=255), AfterValidator(_no_nul)
]
MessageType = Literal["track", "identify", "page", "alias"]


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

    @field_validator("context", "properties", "traits")
    @classmethod
    def _portable_json(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Skipped when the raw body cannot hold NUL/NaN/Infinity (see `needs_deep_check`).
        if not (info.context or {}).get("shallow"):
            check_json(value)
        return value


class TrackIn(SegmentMessageBase):
    type: Literal["track"] | None = None
    event: Text = Field(min_length=1, max_length=200)


class IdentifyIn(SegmentMessageBase):
    type: Literal["identify"] | None = None


class PageIn(SegmentMessageBase):
    type: Literal["page"] | None = None
    name: Text | None = Field(default=None, max_length=200)
    category: Text | None = Field(default=None, max_length=200)


class AliasIn(SegmentMessageBase):
    type: Literal["alias"] | None = None
    previousId: Ident


class BatchItem(SegmentMessageBase):
    type: MessageType
    event: Text | None = Field(default=None, min_length=1, max_length=200)
    name: Text | None = Field(default=None, max_length=200)
    category: Text | None = Field(default=None, max_length=200)
    previousId: Ident | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: list[BatchItem] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    sentAt: dt.datetime | None = None


class IngestAccepted(BaseModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="events whose messageId was already stored")


SINGLE_SCHEMAS: dict[str, type[SegmentMessageBase]] = {
    "track": TrackIn,
    "identify": IdentifyIn,
    "page": PageIn,
    "alias": AliasIn,
}
