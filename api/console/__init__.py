"""The web console at /console: server-rendered pages (Jinja2, htmx as an improvement) over
the same service functions as the JSON API. docs/console.md says how to add a page.

`install(app)` mounts each page module's router under /console (not in the OpenAPI document:
HTML pages are no part of the JSON API) and the static assets the package ships."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import kit
from api.console.pages import (
    audiences,
    journeys,
    maturity,
    overview,
    profiles,
    sales,
    signin,
    templates,
)

# Every page module (each exposes `router`, paths relative to /console); a new page adds its
# module here.
PAGES = [signin, overview, journeys, audiences, profiles, templates, sales, maturity]

STATIC_PATH = f"{kit.PREFIX}/static"


def install(app: FastAPI) -> None:
    for page in PAGES:
        app.include_router(page.router, prefix=kit.PREFIX, include_in_schema=False)
    app.mount(STATIC_PATH, StaticFiles(directory=kit.STATIC_DIR), name="console-static")
