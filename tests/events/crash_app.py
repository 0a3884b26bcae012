"""ASGI factory for the crash test: the API only (no processor), settings from REJSE_* env."""

from api.app import create_app
from rejse.runtime import Runtime
from rejse.settings import load_settings


def app():
    return create_app(Runtime.create(load_settings()))
