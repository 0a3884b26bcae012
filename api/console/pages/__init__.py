"""The console's pages, one module each, every one exposing `router` (docs/console.md)."""
