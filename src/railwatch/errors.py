"""Errors and warnings raised by railwatch.

Every error carries the object that caused it (a file path, a config key) so that the
command line can print one line naming it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RailwatchError",
    "SiteConfigError",
    "SceneReadError",
    "VectorReadError",
    "InputFileError",
    "NoUsableScenes",
    "OutputError",
    "WorkerLost",
    "RailwatchWarning",
    "GeometryRepairedWarning",
]


class RailwatchError(Exception):
    """Base class of every error railwatch raises on purpose."""


class SiteConfigError(RailwatchError, ValueError):
    """A site file (or an option standing in for it) is missing, malformed or invalid.

    Parameters
    ----------
    path : str or Path or None
        The offending file, or None for a value that came from the command line.
    key : str or None
        Dotted key inside the file (``vehicles.lengths_m.tank``), or None for the file as
        a whole.
    problem : str
        What is wrong, in a few words.
    """

    def __init__(self, path: str | Path | None, key: str | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.key = key
        self.problem = problem
        parts = [p for p in (self.path, key, problem) if p]
        super().__init__(": ".join(parts))


class SceneReadError(RailwatchError, OSError):
    """An image file cannot be used.

    Parameters
    ----------
    path : str or Path
        The file.
    reason : str
        Why, in a few words; this is what ``scenes.csv`` records.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class VectorReadError(RailwatchError, ValueError):
    """A vector file (AOI, tracks, truth) cannot be read or holds no usable geometry."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InputFileError(RailwatchError, ValueError):
    """A tabular or results file given by the user is missing or malformed."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NoUsableScenes(RailwatchError):
    """Nothing among the inputs could be processed."""


class WorkerLost(RailwatchError):
    """A pool worker process ended abruptly (killed, e.g. by the kernel's OOM killer)."""


class OutputError(RailwatchError, OSError):
    """An output file could not be written; previous outputs are left intact."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RailwatchWarning(UserWarning):
    """Base class of railwatch warnings."""


class GeometryRepairedWarning(RailwatchWarning):
    """An invalid geometry was repaired on load."""
