"""ASGI factory for the crash test and bench.ingest: the API only (no processor), settings and
logging from REJSE_* env, as `rejse api` would set them up."""

from rejse import wiring
from rejse.logging import configure_logging
from rejse.runtime import Runtime
from rejse.settings import load_settings


def app():
    settings = load_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    return wiring.api_app(Runtime.create(settings))
