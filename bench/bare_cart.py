"""The baseline of `bench.journey_runs`: a bare Temporal workflow of the quick cart's shape (a
one-second timer, then one activity that does nothing), with none of rejse's journey
interpreter or bookkeeping. Kept in a module of its own so the workflow sandbox imports only
this."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.bare_send")
def bare_send(profile: str) -> str:
    return profile


@workflow.defn(name="bench.BareCart")
class BareCart:
    @workflow.run
    async def run(self, profile: str) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return await workflow.execute_activity(
            bare_send, profile, start_to_close_timeout=timedelta(seconds=30)
        )
