"""railwatch: count railcars in rail yards from georeferenced imagery over time.

The same pipeline as the command line, as functions returning pandas / geopandas objects::

    import railwatch
    result = railwatch.count(["data/samples/tumangang"], site="configs/tumangang.yaml",
                             out_dir="runs/tmg")
    results = railwatch.load_results("runs/tmg")
    results.counts[["date", "railcars", "status"]]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from railwatch._version import __version__
from railwatch.errors import (
    InputFileError,
    NoUsableScenes,
    RailwatchError,
    SceneReadError,
    SiteConfigError,
    VectorReadError,
)
from railwatch.outputs import Results, load_results
from railwatch.site import Site, load_site, site_from_aoi

__all__ = [
    "__version__",
    "count",
    "load_results",
    "load_site",
    "site_from_aoi",
    "Site",
    "Results",
    "RailwatchError",
    "SiteConfigError",
    "SceneReadError",
    "VectorReadError",
    "InputFileError",
    "NoUsableScenes",
]


def count(
    imagery: Sequence[str | Path] | str | Path,
    *,
    out_dir: str | Path,
    site: Site | str | Path | None = None,
    aoi: str | Path | None = None,
    tracks: str | Path | None = None,
    resolution_m: float | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
) -> Any:
    """Count railcars on ``imagery`` and write the results directory ``out_dir``.

    Parameters
    ----------
    imagery : path or sequence of paths
        Image files, folders or STAC documents.
    out_dir : str or Path
        Results directory (see docs/design.md for its files).
    site : Site or path, optional
        A :class:`Site` or a site file; ``aoi`` alone is enough.
    aoi, tracks : path, optional
        Vector files (any OGR format, any CRS) overriding the site's AOI / tracks.
    resolution_m : float, optional
        Working resolution in metres.
    workers : int
        Local worker processes.
    scheduler : str, optional
        Dask distributed scheduler address.
    force : bool
        Recompute every acquisition.

    Returns
    -------
    railwatch.pipeline.RunResult
        ``counts``, ``weekly`` and ``scenes`` DataFrames plus run statistics.
    """
    from railwatch.pipeline import run_count
    from railwatch.site import resolve_site

    if isinstance(imagery, str | Path):
        imagery = [imagery]
    the_site = resolve_site(site, aoi=aoi, tracks=tracks)
    return run_count(
        imagery,
        the_site,
        out_dir,
        resolution_m=resolution_m,
        workers=workers,
        scheduler=scheduler,
        force=force,
    )
