"""Temporal client access shared by the API, the worker and the processor."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, TelemetryConfig
from temporalio.runtime import Runtime as SdkRuntime

from rejse.settings import Settings

DATA_CONVERTER = pydantic_data_converter

# Search attributes rejse sets on its workflows. Values are opaque ids, never PII.
SA_PROFILE_ID = SearchAttributeKey.for_keyword("RejseProfileId")
SA_JOURNEY = SearchAttributeKey.for_keyword("RejseJourney")
SEARCH_ATTRIBUTES = (SA_PROFILE_ID, SA_JOURNEY)


@lru_cache
def sdk_runtime(metrics_address: str) -> SdkRuntime:
    """The Temporal SDK's runtime that serves its own metrics (client calls, workflow and
    activity tasks, pollers, slots, sticky cache) in Prometheus format at `metrics_address`.
    One per address and process: the SDK binds the port when it is made."""
    return SdkRuntime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=metrics_address, durations_as_seconds=True)
        )
    )


async def connect(settings: Settings) -> Client:
    address = settings.temporal_metrics_address
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        runtime=sdk_runtime(address) if address else None,
    )


async def ensure_search_attributes(client: Client) -> None:
    """Register rejse's custom search attributes if the namespace does not have them yet."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


class TemporalConnector:
    """Connects lazily and once; tests hand in a ready client."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.wait_for(connect(self._settings), timeout=10)
        return self._client

    async def ping(self) -> bool:
        try:
            client = await self.client()
            await asyncio.wait_for(client.service_client.check_health(), timeout=3)
            return True
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            return False
