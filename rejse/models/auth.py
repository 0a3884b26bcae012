import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from rejse.db import UTCDateTime, utcnow


class ApiKeyBase(SQLModel):
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)


class ApiKey(ApiKeyBase, table=True):
    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), unique=True, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A sales key bound to one rep sees only that rep's leads; None: every rep's (a manager's
    # key, and every key of another role). A plain id: reps live in the leads domain.
    rep_id: str | None = Field(default=None, max_length=32)
