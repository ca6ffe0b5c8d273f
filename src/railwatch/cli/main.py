"""The ``railwatch`` command group: logging, error conversion, lazy subcommands."""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from railwatch._version import __version__

# Subcommands live in railwatch.cli.<name> as a click command named ``command``; they are
# imported only when used so ``railwatch --help`` stays fast.
COMMANDS = {
    "count": "Count railcars per acquisition and write the output directory.",
    "report": "Re-draw figures and report.html from a results directory.",
    "evaluate": "Score a results directory against labelled vehicles.",
    "simulate": "Render synthetic yard scenes with exact truth.",
    "info": "Date, CRS, GSD, bands and AOI coverage of image files.",
    "tracks": "Extract track centre lines from imagery.",
}


class LazyGroup(click.Group):
    """Group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of all subcommands, in DESIGN.md order."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Import ``railwatch.cli.<name>`` and return its ``command``."""
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"railwatch.cli.{name}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List subcommands from their one-line summaries without importing them."""
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


class RailwatchGroup(LazyGroup):
    """Turns library errors into one-line messages with DESIGN.md exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the subcommand inside the CLI error boundary."""
        from railwatch.cli.options import run_guarded

        return run_guarded(ctx, super().invoke)


@click.group(cls=RailwatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log messages (repeatable).")
@click.option("-q", "--quiet", count=True, help="Fewer log messages (repeatable).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, "--version", prog_name="railwatch")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    """Count railcars in rail yards from georeferenced satellite imagery over time."""
    verbosity = verbose - quiet
    level = logging.DEBUG if debug else max(10, 30 - 10 * verbosity)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("railwatch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    ctx.obj = {"debug": debug, "verbosity": verbosity}
