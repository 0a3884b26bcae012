"""Split mode in-process: `rejse api` + `rejse worker` + `rejse scheduler` parts against an
external Temporal (the dev server fixture) serve real HTTP, register the search
attributes, and stop cleanly when asked."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

from rejse.up import Parts, serve
from tests.foundation.procs import free_port


async def test_split_parts_serve_and_stop(settings, dev_env):
    target = dev_env.client.service_client.config.target_host
    settings = settings.model_copy(
        update={
            "temporal_address": target,
            "api_port": free_port(),
            "bootstrap_admin_key": "split-mode-bootstrap-key-123456",
        }
    )
    started = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            settings,
            Parts(api=True, worker=True, scheduler=True),
            on_started=lambda _: started.set(),
            stop=stop,
        )
    )
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({waiter, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what went wrong
    assert started.is_set()
    # One process runs the API, the worker, the processor and five scheduler jobs starting at
    # once; on a loaded CI machine the first authenticated call has taken over httpx's 5 s.
    base = f"http://127.0.0.1:{settings.api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await http.get("/readyz")).status_code == 200
        r = await http.get(
            "/api/keys", headers={"Authorization": f"Bearer {settings.bootstrap_admin_key}"}
        )
        assert r.status_code == 200
    attrs = await dev_env.client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=dev_env.client.namespace)
    )
    assert {"RejseProfileId", "RejseJourney"} <= set(attrs.custom_attributes)
    stop.set()
    assert await asyncio.wait_for(task, 30) == 0
