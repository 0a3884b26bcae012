"""Every SQLModel table, one module per domain. Importing this registers them all.

Cross-domain references are plain `profile_id` columns (no foreign keys across domains), so each
domain migrates on its own Alembic branch off the foundation revision.
"""

from rejse.models.analytics import (  # noqa: F401
    AnalyticsConversion,
    AnalyticsDelta,
    AnalyticsJourney,
    AnalyticsPending,
    AnalyticsRollup,
)
from rejse.models.audiences import Audience, AudienceMembership, AudienceRecheck  # noqa: F401
from rejse.models.auth import ApiKey  # noqa: F401
from rejse.models.console import ConsoleSession  # noqa: F401
from rejse.models.events import DeadLetter, Event, OutboxBucket, OutboxEntry, WebhookSource  # noqa: F401
from rejse.models.funnel import StageChange, StageDaily  # noqa: F401
from rejse.models.journeys import Journey, JourneyRun, JourneyStep, JourneyVersion  # noqa: F401
from rejse.models.leads import (  # noqa: F401
    Lead,
    ProfileScore,
    SalesRep,
    ScoreCounter,
    ScoreGrant,
    ScoringModel,
)
from rejse.models.maturity import MaturityAssessment, MaturityProfileData  # noqa: F401
from rejse.models.messaging import Message, MessageTemplate  # noqa: F401
from rejse.models.profiles import (  # noqa: F401
    Consent,
    ConsentChangeRecord,
    ErasedIdentifier,
    Profile,
    ProfileErasure,
    ProfileIdentifier,
    ProfileMerge,
)
from rejse.models.ratelimits import RateLimitWindow  # noqa: F401
from rejse.models.timeline import TimelineEntry  # noqa: F401
