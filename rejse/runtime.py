"""What every process of rejse shares: settings, the database engine, Temporal, the key cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from temporalio.client import Client

from rejse.db import make_engine
from rejse.keys import KeyCache
from rejse.settings import Settings
from rejse.temporal import TemporalConnector


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    temporal: TemporalConnector
    keys: KeyCache = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyCache(self.engine)

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        engine: Engine | None = None,
        temporal_client: Client | None = None,
    ) -> Runtime:
        return cls(
            settings=settings,
            engine=engine or make_engine(settings.effective_database_url),
            temporal=TemporalConnector(settings, temporal_client),
        )
