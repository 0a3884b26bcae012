"""The FastAPI application: one factory, every router listed here."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.routers import (
    health,
    inbox,
    ingest,
    journeys,
    keys,
    messages,
    profiles,
    sales,
    scoring,
    templates,
    tracking,
    webhooks,
)
from rejse import __version__
from rejse.contracts import ProfileEraser
from rejse.runtime import Runtime

ROUTERS = [
    ingest.router,
    health.router,
    keys.router,
    webhooks.router,
    profiles.router,
    templates.router,
    messages.router,
    inbox.router,
    tracking.router,
    journeys.router,
    scoring.router,
    sales.router,
]


def create_app(
    runtime: Runtime,
    *,
    profile_erasers: Sequence[ProfileEraser],
    activity_names: frozenset[str],
) -> FastAPI:
    """The app over `runtime`; `profile_erasers` run on GDPR erase, `activity_names` are the
    activities a published journey may call (both from the composition root)."""
    # /docs and /redoc load Swagger UI and ReDoc from files the package ships (under
    # /static-offline-docs), not from a CDN: the docs work on a laptop without internet and
    # behind a firewall. Swagger UI's validator badge would fetch an image from swagger.io for
    # every page view (and send it the document's URL), so it is off.
    app = FastAPIOffline(
        title="rejse",
        version=__version__,
        description="Customer journeys as Temporal workflows. Authenticate with "
        "`Authorization: Bearer <API key>`.",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.runtime = runtime
    app.state.profile_erasers = list(profile_erasers)
    app.state.activity_names = activity_names
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    ingest.add_ingest_routes(app)  # first, on the app itself: the hot path matches at once
    for router in ROUTERS:
        app.include_router(router)
    return app
