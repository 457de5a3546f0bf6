"""The `agentjournal` command: a thin skin over the library (Typer + Rich)."""
