"""Messaging: sandboxed templates, channels, guards, tracking tokens and the message log."""
