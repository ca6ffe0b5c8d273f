"""``railwatch count``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from railwatch.cli.options import (
    ScenesRejected,
    _existing_file,
    aoi_opt,
    force_opt,
    imagery_arg,
    out_dir_opt,
    resolution_opt,
    tracks_opt,
    workers_opt,
)
from railwatch.site import resolve_site


@click.command(name="count")
@imagery_arg
@click.option(
    "--site",
    "site_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    callback=lambda ctx, param, values: tuple(_existing_file(ctx, param, v) for v in values),
    help="Site file (YAML); repeat it, or give a folder of *.yaml files, to count several "
    "sites in one run, each into its own subfolder of --out.",
)
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
    site_paths: tuple[Path, ...],
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
    from railwatch.pipeline import Executor, run_count

    paths = _site_files(site_paths)
    show = sys.stderr.isatty() if progress is None else progress
    if len(paths) <= 1:
        site = resolve_site(paths[0] if paths else None, aoi=aoi, tracks=tracks)
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
        _summary(result, out_dir)
        if strict and result.n_rejected:
            raise ScenesRejected(
                f"{result.n_rejected} input file(s) rejected; see {out_dir}/scenes.csv"
            )
        return
    # Several sites: every site file is checked before any work starts; each site gets
    # its own subfolder (and lock and state); all share one pool or cluster. A site with
    # nothing usable does not stop the others; the exit code is the worst of them.
    sites = [(p, resolve_site(p, aoi=aoi, tracks=tracks)) for p in paths]
    subdirs = _subdirs([s for _, s in sites], [p for p, _ in sites])
    from railwatch.errors import RailwatchError

    failures: list[RailwatchError] = []
    rejected = 0
    with Executor(workers, scheduler) as ex:
        for (path, site), sub in zip(sites, subdirs, strict=True):
            out = out_dir / sub
            click.echo(f"== {site.name} ({path}) -> {out}", err=True)
            try:
                with ProgressReporter(enabled=show) as reporter:
                    result = run_count(
                        imagery,
                        site,
                        out,
                        resolution_m=resolution_m,
                        force=force,
                        progress=reporter,
                        executor=ex,
                    )
            except RailwatchError as exc:
                click.echo(f"Error: {exc}", err=True)
                failures.append(exc)
                continue
            click.echo(f"== {site.name}")
            _summary(result, out)
            rejected += result.n_rejected
    if failures:
        # The first failure decides the exit code (each was reported above).
        raise failures[0]
    if strict and rejected:
        raise ScenesRejected(f"{rejected} input file(s) rejected; see scenes.csv of each site")


def _site_files(paths: tuple[Path, ...]) -> list[Path]:
    """Site files from ``--site`` values: files as given, folders as their *.yaml files."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise click.BadParameter(f"{p}: no *.yaml site files in this folder")
            out.extend(found)
        else:
            out.append(p)
    return out


def _subdirs(sites: list, paths: list[Path]) -> list[str]:
    """One output subfolder per site: its name as a slug, made unique with the file name."""
    import re

    names = [re.sub(r"[^a-z0-9]+", "-", s.name.lower()).strip("-") or "site" for s in sites]
    return [
        n if names.count(n) == 1 else f"{n}-{re.sub(r'[^a-z0-9]+', '-', p.stem.lower())}"
        for n, p in zip(names, paths, strict=True)
    ]


def _summary(result, out_dir: Path) -> None:
    click.echo(f"{'date':<10}  {'status':<11}  {'railcars':>8}  {'interval':>9}  coverage")
    for row in result.counts.itertuples(index=False):
        n = "" if row.railcars is None or _isna(row.railcars) else str(int(row.railcars))
        iv = "" if n == "" else f"{int(row.railcars_low)}-{int(row.railcars_high)}"
        click.echo(f"{_d(row.date):<10}  {row.status:<11}  {n:>8}  {iv:>9}  {row.coverage:.2f}")
    click.echo(
        f"{len(result.counts)} acquisition(s) ({result.n_processed} analysed now, "
        f"{len(result.counts) - result.n_processed} from earlier runs), "
        f"{result.n_rejected} file(s) rejected; results in {out_dir}",
        err=True,
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
