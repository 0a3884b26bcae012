"""The FastAPI application: one factory, every router listed here."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.routers import health, keys
from api.routers import ingest, profiles, webhooks  # events/profiles (issue 4)
from api.routers import inbox, messages, templates, tracking  # messaging (issue 6)
from api.routers import sales, scoring  # leads (issue 7)
from api.routers import journeys  # journeys (issue 5)
from rejse import __version__
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


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="rejse",
        version=__version__,
        description="Customer journeys as Temporal workflows. Authenticate with "
        "`Authorization: Bearer <API key>`.",
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    ingest.add_ingest_routes(app)  # first, on the app itself: the hot path matches at once
    for router in ROUTERS:
        app.include_router(router)
    return app
