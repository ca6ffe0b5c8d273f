"""``railwatch count``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from railwatch.cli.options import (
    ScenesRejected,
    aoi_opt,
    force_opt,
    imagery_arg,
    out_dir_opt,
    resolution_opt,
    site_opt,
    tracks_opt,
    workers_opt,
)
from railwatch.site import resolve_site


@click.command(name="count")
@imagery_arg
@site_opt
@aoi_opt
@tracks_opt
@out_dir_opt
@resolution_opt
@workers_opt
@force_opt
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run the per-acquisition tasks on this Dask distributed scheduler (tcp://host:8786).",
)
@click.option("--strict", is_flag=True, help="Exit 1 when any input file was rejected.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: only when stderr is a terminal).",
)
def command(
    imagery: tuple[Path, ...],
    site_path: Path | None,
    aoi: Path | None,
    tracks: Path | None,
    out_dir: Path,
    resolution_m: float | None,
    workers: int,
    force: bool,
    scheduler: str | None,
    strict: bool,
    progress: bool | None,
) -> None:
    """Count railcars on every acquisition in IMAGERY and write results to --out.

    IMAGERY is any mix of image files, folders (searched recursively) and STAC items,
    item collections or catalogs. Re-runs on the same --out analyse only new or changed
    acquisitions; --force recomputes everything.
    """
    from railwatch.pipeline import run_count

    site = resolve_site(site_path, aoi=aoi, tracks=tracks)
    show = sys.stderr.isatty() if progress is None else progress
    with ProgressReporter(enabled=show) as reporter:
        result = run_count(
            imagery,
            site,
            out_dir,
            resolution_m=resolution_m,
            workers=workers,
            scheduler=scheduler,
            force=force,
            progress=reporter,
        )
    out = click.get_text_stream("stdout")
    out.write(f"{'date':<10}  {'status':<11}  {'railcars':>8}  {'interval':>9}  coverage\n")
    for row in result.counts.itertuples(index=False):
        n = "" if row.railcars is None or _isna(row.railcars) else str(int(row.railcars))
        iv = "" if n == "" else f"{int(row.railcars_low)}-{int(row.railcars_high)}"
        out.write(f"{_d(row.date):<10}  {row.status:<11}  {n:>8}  {iv:>9}  {row.coverage:.2f}\n")
    click.echo(
        f"{len(result.counts)} acquisition(s) ({result.n_processed} analysed now, "
        f"{len(result.counts) - result.n_processed} from earlier runs), "
        f"{result.n_rejected} file(s) rejected; results in {out_dir}",
        err=True,
    )
    if strict and result.n_rejected:
        raise ScenesRejected(
            f"{result.n_rejected} input file(s) rejected; see {out_dir}/scenes.csv"
        )


class ProgressReporter:
    """``progress(stage, done, total)`` drawn as a click progress bar on stderr."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._stage: str | None = None
        self._done = 0

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Advance the bar of ``stage`` to ``done`` of ``total``."""
        if not self.enabled:
            return
        if stage != self._stage:
            self._close()
            self._stage, self._done = stage, 0
            self._bar = click.progressbar(length=total, label=f"{stage:<10}", file=sys.stderr)
            self._bar.render_progress()
        self._bar.update(done - self._done)
        self._done = done


def _isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def _d(v: object) -> str:
    return v.isoformat()[:10] if hasattr(v, "isoformat") else str(v)[:10]
