"""rejse: customer journeys as Temporal workflows (shared core package)."""

__version__ = "0.1.0"
