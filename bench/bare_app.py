"""Baseline for bench.ingest: a bare FastAPI endpoint parsing the same JSON (no auth, no DB)."""

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/track", status_code=202)
async def track(body: dict[str, Any]) -> dict[str, int]:
    return {"accepted": 1, "duplicates": 0}


@app.post("/v1/batch", status_code=202)
async def batch(body: dict[str, Any]) -> dict[str, int]:
    return {"accepted": len(body.get("batch", [])), "duplicates": 0}
