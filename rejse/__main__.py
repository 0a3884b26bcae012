"""`python -m rejse` is the `rejse` command."""

from rejse.cli import app

app(prog_name="rejse")
