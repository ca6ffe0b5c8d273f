"""``railwatch info``: what railwatch sees in each image file."""

from __future__ import annotations

import click

from railwatch.cli.options import NothingProcessed, aoi_opt, imagery_arg


@click.command(name="info")
@imagery_arg
@aoi_opt
def command(imagery: tuple, aoi: object) -> None:
    """Print date, CRS, GSD, bands, dtype and AOI coverage per file (tab-separated).

    Rows of files that cannot be used say why in the `status` column. Exit code 3 when
    no file is usable.
    """
    from railwatch.imagery import aoi_coverage, discover, iso_utc
    from railwatch.site import load_aoi

    geom = load_aoi(aoi) if aoi is not None else None
    files, rejected = discover(imagery)
    cols = ["path", "date", "date_source", "crs", "gsd_m", "size", "bands", "dtype"]
    if geom is not None:
        cols.append("aoi_coverage")
    cols.append("status")
    click.echo("\t".join(cols))
    for f in files:
        row = [
            f.path,
            iso_utc(f.datetime) if f.datetime else "",
            f.date_source or "",
            f.crs,
            f"{f.gsd_m:.3f}",
            f"{f.width}x{f.height}",
            f"{f.count} ({','.join(f.bands)})",
            f.dtype,
        ]
        if geom is not None:
            try:
                row.append(f"{aoi_coverage(f, geom):.3f}")
            except Exception as exc:  # a read error here is reported, not fatal
                row.append(f"error: {exc}")
        row.append("ok")
        click.echo("\t".join(row))
    for r in rejected:
        blanks = [""] * (len(cols) - 2)
        click.echo("\t".join([r.path, *blanks, f"rejected: {r.reason}"]))
    if not files:
        raise NothingProcessed("no usable image among the inputs")
