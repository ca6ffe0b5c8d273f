"""``railwatch count``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from railwatch.cli.options import (
    ConfigError,
    NothingProcessed,
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
from railwatch.site import Site, resolve_site


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
    from railwatch.pipeline import run_count

    paths, many = _site_files(site_paths)
    show = sys.stderr.isatty() if progress is None else progress
    if not many:
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
    _count_sites(
        imagery,
        [resolve_site(p, aoi=aoi, tracks=tracks) for p in paths],
        out_dir,
        resolution_m=resolution_m,
        workers=workers,
        scheduler=scheduler,
        force=force,
        strict=strict,
        show=show,
    )


def _count_sites(
    imagery: tuple[Path, ...],
    sites: list[Site],
    out_dir: Path,
    *,
    resolution_m: float | None,
    workers: int,
    scheduler: str | None,
    force: bool,
    strict: bool,
    show: bool,
) -> None:
    """Several sites, each into its own subfolder of ``out_dir``, on one pool or cluster.

    Every site file was loaded (and checked) before this starts. A site that fails is
    reported on one line and the others go on; the exit code is the worst of them.
    """
    from railwatch.pipeline import run_sites, site_subdirs

    subdirs = site_subdirs(sites)
    failed: list[tuple[str, int]] = []
    rejected = 0
    with ProgressReporter(enabled=show) as reporter:
        runs = run_sites(
            imagery,
            sites,
            out_dir,
            subdirs=subdirs,
            resolution_m=resolution_m,
            workers=workers,
            scheduler=scheduler,
            force=force,
            progress=reporter,
        )
        for run, sub in zip(runs, subdirs, strict=True):
            reporter.close()
            if run.error is not None:
                code = _exit_code(run.error)
                click.echo(f"Error: {run.site.name} ({sub}): {run.error}", err=True)
                failed.append((sub, code))
                continue
            assert run.result is not None
            click.echo(f"== {run.site.name} ({sub})")
            _summary(run.result, run.out_dir)
            rejected += run.result.n_rejected
    if failed:
        worst = max(code for _, code in failed)
        names = ", ".join(sub for sub, _ in failed)
        exc = {2: ConfigError, 3: NothingProcessed}.get(worst, click.ClickException)
        raise exc(f"{len(failed)} of {len(sites)} site(s) failed: {names}")
    if strict and rejected:
        raise ScenesRejected(
            f"{rejected} input file(s) rejected; see scenes.csv in each site's folder"
        )


def _exit_code(exc: Exception) -> int:
    """The DESIGN.md exit code the command line gives ``exc`` (as cli.options does)."""
    from railwatch.errors import (
        InputFileError,
        NoUsableScenes,
        OutputError,
        SceneReadError,
        SiteConfigError,
        VectorReadError,
    )
    from railwatch.state import RunLocked

    if isinstance(exc, SiteConfigError | VectorReadError | InputFileError):
        return 2
    if isinstance(exc, NoUsableScenes | SceneReadError | RunLocked | OutputError):
        return 3
    return 1


def _site_files(paths: tuple[Path, ...]) -> tuple[list[Path], bool]:
    """Site files from ``--site`` values, and whether this is a many-sites run.

    Files are taken as given, folders as their *.yaml / *.yml files. A folder, or more
    than one file, is a many-sites run (one subfolder of --out per site), whatever the
    number of files in the folder, so the layout of --out does not change when a site
    is added to the folder. A file given twice counts once.
    """
    out: list[Path] = []
    many = False
    for p in paths:
        if p.is_dir():
            many = True
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise click.BadParameter(f"{p}: no *.yaml site files in this folder")
            out.extend(found)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique, many or len(unique) > 1


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
        self.close()

    def close(self) -> None:
        """Finish the current bar (before printing anything else on the terminal)."""
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None
        self._stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Advance the bar of ``stage`` to ``done`` of ``total``."""
        if not self.enabled:
            return
        if stage != self._stage:
            self.close()
            self._stage, self._done = stage, 0
            self._bar = click.progressbar(length=total, label=f"{stage:<10}", file=sys.stderr)
            self._bar.render_progress()
        # Tasks on a pool or cluster finish out of order: never move the bar back.
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done


def _isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def _d(v: object) -> str:
    return v.isoformat()[:10] if hasattr(v, "isoformat") else str(v)[:10]
