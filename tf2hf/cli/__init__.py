"""The command line: ``tf2hf`` (typer app) and its console entry point ``main``."""

from tf2hf.cli.app import app, main

__all__ = ["app", "main"]
