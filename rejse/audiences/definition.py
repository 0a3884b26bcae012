"""What a marketer saves as an audience: a key, a name, a condition and the segmentation canvas.

The condition is the one condition language (`rejse.conditions`); the canvas (seed 001, the
B2B/B2C segmentation tool) describes the segment for people and does not change membership.
Checks that need the database (other audiences exist, no cycles) live in the service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
AUDIENCE_ENTERED = "Audience Entered"  # internal events, properties {"audience": key, ...}
AUDIENCE_EXITED = "Audience Exited"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Canvas(_Model):
    """The segmentation canvas: FAKTA, SALG and VÆRDI as text, whether the segment is one of
    today's customers or a potential one, B2B or B2C, and its priority (1 = highest)."""

    facts: str | None = Field(default=None, max_length=2000, description="FAKTA: who they are")
    sales: str | None = Field(default=None, max_length=2000, description="SALG: what they buy")
    value: str | None = Field(default=None, max_length=2000, description="VÆRDI: their goals")
    kind: Literal["existing", "potential"] | None = None
    market: Literal["b2b", "b2c"] | None = None
    priority: int | None = Field(default=None, ge=1, le=5)


class AudienceDefinition(_Model):
    key: str = Field(pattern=SLUG, description='referenced as {"audience": key}')
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    condition: dict[str, Any] = Field(description="a condition (docs/audiences.md)")
    canvas: Canvas = Field(default_factory=Canvas)
    trigger_existing: bool = Field(
        default=False,
        description="on creation, fire 'Audience Entered' for the profiles that already match "
        "(off: they become members silently, so no journey starts for them)",
    )
