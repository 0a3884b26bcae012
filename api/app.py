"""The FastAPI application: one factory, every router listed here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import console
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.ratelimit import add_rate_limit_responses, install_rate_limits
from api.routers import (
    analytics,
    audiences,
    experiments,
    funnel,
    health,
    inbox,
    ingest,
    journeys,
    keys,
    maturity,
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
    audiences.router,
    analytics.router,
    experiments.router,
    scoring.router,
    sales.router,
    funnel.router,
    maturity.router,
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
    install_rate_limits(app, runtime)
    document_auth_errors(app)
    app.add_middleware(RequestContextMiddleware)
    ingest.add_ingest_routes(app)  # first, on the app itself: the hot path matches at once
    for router in ROUTERS:
        app.include_router(router)
    console.install(app)  # /console: HTML pages, outside the OpenAPI document
    return app


# ----------------------------------------------------------------------------- OpenAPI

# The body of a 401 or 403: `detail` says what is wrong (no key, or which roles may do this).
AUTH_ERROR_SCHEMA: dict[str, Any] = {
    "title": "AuthError",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_AUTH_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/AuthError"}}}
AUTH_RESPONSES: dict[str, dict[str, Any]] = {
    "401": {
        "description": "No API key, or one that is unknown or revoked",
        "headers": {
            "WWW-Authenticate": {
                "description": "the schemes the operation takes",
                "schema": {"type": "string"},
            }
        },
        "content": _AUTH_ERROR_BODY,
    },
    "403": {
        "description": "The key's role may not do this (the body names the roles that may)",
        "content": _AUTH_ERROR_BODY,
    },
}


def add_auth_responses(doc: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes an API key documents its 401 and 403: a client generated
    from the document then knows both answers (they come from the key check every such route
    runs, so no route declares them itself)."""
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and operation.get("security"):
                responses = operation.setdefault("responses", {})
                for status, answer in AUTH_RESPONSES.items():
                    # A route's own description stays; what it leaves out is added.
                    mine = responses.setdefault(status, {})
                    for part, value in answer.items():
                        mine.setdefault(part, value)
    doc.setdefault("components", {}).setdefault("schemas", {})["AuthError"] = AUTH_ERROR_SCHEMA
    return doc


def document_auth_errors(app: FastAPI) -> None:
    """Post-process the app's OpenAPI document once, when it is first built."""
    build: Callable[[], dict[str, Any]] = app.openapi
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            done.append(add_rate_limit_responses(add_auth_responses(build())))
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
