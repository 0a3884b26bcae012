"""Rate-limit windows shared by every API process on PostgreSQL (`rejse.ratelimits`): one row
per limited caller and scope, reset in place when its window has passed, so the table holds as
many rows as there are keys (and webhook sources) that called, never one per window."""

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class RateLimitWindow(SQLModel, table=True):
    __tablename__ = "rate_limit_window"

    # the `limits` package's key: "LIMITER/<scope>/<key id or webhook source>/<amount>/<unit>"
    key: str = Field(primary_key=True, max_length=400)
    hits: int = Field(sa_type=sa.BigInteger)
    expires_at: float  # seconds since the epoch: the end of the current window
