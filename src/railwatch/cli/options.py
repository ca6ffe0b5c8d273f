"""Reusable options, callbacks and the error boundary of the command line."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from railwatch.errors import (
    InputFileError,
    NoUsableScenes,
    OutputError,
    RailwatchError,
    RailwatchWarning,
    SceneReadError,
    SiteConfigError,
    VectorReadError,
    WorkerLost,
)
from railwatch.state import RunLocked

logger = logging.getLogger("railwatch.cli")


class ConfigError(click.ClickException):
    """Bad site file, vector or option value: exit 2."""

    exit_code = 2


class NothingProcessed(click.ClickException):
    """No acquisition could be processed: exit 3."""

    exit_code = 3


class ScenesRejected(click.ClickException):
    """Some scenes were rejected under ``--strict``: exit 1."""

    exit_code = 1


class Terminated(BaseException):
    """SIGTERM during a run (``kill PID``, a service manager or ``timeout`` stopping it)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    # Python's default for SIGTERM ends the process on the spot; raised instead, it
    # unwinds like Ctrl-C: the file being written is removed and the lock released.
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_guarded(ctx: click.Context, func: Callable[[click.Context], Any]) -> Any:
    """Run ``func(ctx)`` converting railwatch errors to one-line messages and exit codes.

    Under ``--debug`` the original exception propagates with its traceback.
    """

    def debug() -> bool:
        return bool(isinstance(ctx.obj, dict) and ctx.obj.get("debug"))

    with warnings.catch_warnings(), _sigterm_raises():
        warnings.simplefilter("default", RailwatchWarning)
        warnings.showwarning = _show_warning
        try:
            return func(ctx)
        except (SiteConfigError, VectorReadError, InputFileError) as exc:
            if debug():
                raise
            raise ConfigError(str(exc)) from None
        except (NoUsableScenes, SceneReadError, RunLocked, OutputError, WorkerLost) as exc:
            # An output that cannot be written means the run did not complete: exit 3,
            # never 1, which cron jobs read as "some scenes rejected".
            if debug():
                raise
            raise NothingProcessed(str(exc)) from None
        except RailwatchError as exc:
            if debug():
                raise
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            if debug():
                raise
            click.echo("Aborted: interrupted; outputs of completed steps are intact.", err=True)
            ctx.exit(130)
        except Terminated:
            if debug():
                raise
            click.echo("Aborted: terminated; outputs of completed steps are intact.", err=True)
            ctx.exit(143)


def _show_warning(
    message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    # railwatch's own warnings are for the user; other libraries' (deprecations and the
    # like) are for developers and go to the debug log.
    if issubclass(category, RailwatchWarning):
        click.echo(f"Warning: {message}", err=True)
    else:
        logger.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)


# ----------------------------------------------------------------------------- options

imagery_arg = click.argument("imagery", nargs=-1, required=True, type=click.Path(path_type=Path))


def _existing_file(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return None
    p = Path(value)
    if not p.exists():
        raise click.BadParameter(f"{p}: file not found")
    return p


site_opt = click.option(
    "--site",
    "site_path",
    type=click.Path(path_type=Path),
    callback=_existing_file,
    help="Site file (YAML): AOI, tracks, resolution, priors, baseline.",
)
aoi_opt = click.option(
    "--aoi",
    type=click.Path(path_type=Path),
    callback=_existing_file,
    help="AOI polygon(s), any vector format GDAL reads, any CRS. Overrides the site AOI.",
)
tracks_opt = click.option(
    "--tracks",
    type=click.Path(path_type=Path),
    callback=_existing_file,
    help="Track centre lines, any vector format GDAL reads, any CRS.",
)
out_dir_opt = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory.",
)
resolution_opt = click.option(
    "--resolution",
    "resolution_m",
    type=click.FloatRange(min=0.05, max=30.0),
    help="Working resolution in metres (default: site file, else the finest input).",
)
workers_opt = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local worker processes.",
)
max_pixels_opt = click.option(
    "--max-pixels",
    type=click.IntRange(min=10_000),
    default=None,
    envvar="RAILWATCH_MAX_PIXELS",
    show_envvar=True,
    help="Pixel budget of one read window (per band); larger AOI windows are refused "
    "instead of exhausting memory. Default 400000000.",
)
force_opt = click.option("--force", is_flag=True, help="Recompute every acquisition.")
seed_opt = click.option("--seed", type=int, default=2024, show_default=True, help="Random seed.")
