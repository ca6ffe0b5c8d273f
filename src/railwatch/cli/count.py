"""``railwatch count``: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from railwatch.cli.options import (
    ConfigError,
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
from railwatch.site import Site


def build_site(site_path: Path | None, aoi: Path | None, tracks: Path | None) -> Site:
    """Site from a site file and/or ``--aoi`` / ``--tracks`` (options win)."""
    from railwatch.site import load_aoi, load_site, load_tracks, site_from_aoi

    if site_path is None and aoi is None:
        raise ConfigError("give --site FILE or --aoi VECTOR to say where the yard is")
    site = load_site(site_path) if site_path is not None else site_from_aoi(aoi)
    if site_path is not None and aoi is not None:
        site = site.with_overrides(aoi=load_aoi(aoi))
    if tracks is not None:
        site = site.with_overrides(tracks=load_tracks(tracks))
    return site


@click.command(name="count")
@imagery_arg
@site_opt
@aoi_opt
@tracks_opt
@out_dir_opt
@resolution_opt
@workers_opt
@force_opt
@click.option("--strict", is_flag=True, help="Exit 1 when any input file was rejected.")
def command(
    imagery: tuple[Path, ...],
    site_path: Path | None,
    aoi: Path | None,
    tracks: Path | None,
    out_dir: Path,
    resolution_m: float | None,
    workers: int,
    force: bool,
    strict: bool,
) -> None:
    """Count railcars on every acquisition in IMAGERY and write results to --out.

    IMAGERY is any mix of image files, folders (searched recursively) and STAC items,
    item collections or catalogs. Every run currently recomputes all acquisitions, so
    --force changes nothing yet.
    """
    from railwatch.pipeline import run_count

    site = build_site(site_path, aoi, tracks)
    result = run_count(imagery, site, out_dir, resolution_m=resolution_m, workers=workers)
    out = click.get_text_stream("stdout")
    out.write(f"{'date':<10}  {'status':<11}  {'railcars':>8}  {'interval':>9}  coverage\n")
    for row in result.counts.itertuples(index=False):
        n = "" if row.railcars is None or _isna(row.railcars) else str(int(row.railcars))
        iv = "" if n == "" else f"{int(row.railcars_low)}-{int(row.railcars_high)}"
        out.write(f"{_d(row.date):<10}  {row.status:<11}  {n:>8}  {iv:>9}  {row.coverage:.2f}\n")
    click.echo(
        f"{len(result.counts)} acquisition(s), {result.n_rejected} file(s) rejected; "
        f"results in {out_dir}",
        err=True,
    )
    if strict and result.n_rejected:
        raise ScenesRejected(
            f"{result.n_rejected} input file(s) rejected; see {out_dir}/scenes.csv"
        )


def _isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def _d(v: object) -> str:
    return v.isoformat()[:10] if hasattr(v, "isoformat") else str(v)[:10]
