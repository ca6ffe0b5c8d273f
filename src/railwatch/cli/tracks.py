"""``railwatch tracks``: extract track centre lines from imagery as GeoJSON (EPSG:4326)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import click

from railwatch.cli.options import NothingProcessed, imagery_arg, resolution_opt, workers_opt

logger = logging.getLogger(__name__)


@click.command(name="tracks")
@imagery_arg
@click.option(
    "--aoi",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="AOI polygon(s), any vector format GDAL reads, any CRS.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="GeoJSON file to write (EPSG:4326, one LineString per track, `track_id`).",
)
@resolution_opt
@click.option(
    "--spacing",
    "spacing_m",
    type=click.FloatRange(min=2.0, max=20.0),
    default=4.5,
    show_default=True,
    help="Minimum centre-to-centre distance of parallel tracks, metres.",
)
@workers_opt
def command(
    imagery: tuple[Path, ...],
    aoi: Path,
    output: Path,
    resolution_m: float | None,
    spacing_m: float,
    workers: int,
) -> None:
    """Extract track centre lines from one or more images of a yard.

    Every acquisition (up to 48, spread over the archive) is read onto one metric grid
    around the AOI and co-registered exactly as ``railwatch count`` does, and the rails
    are traced on the whole stack (a single image works too): the lines are those
    ``count`` extracts when the site has none. ``--workers`` runs the per-scene steps and
    the per-pixel line evidence on a local process pool; the lines do not depend on it.
    Prints the number of tracks on stderr.
    """
    import dataclasses

    from railwatch.imagery import discover, finest_gsd, group_acquisitions
    from railwatch.outputs import write_text
    from railwatch.pipeline import Executor, build_stack
    from railwatch.site import WGS84, make_grid, site_from_aoi, to_crs

    site = site_from_aoi(aoi)
    site = dataclasses.replace(
        site, detection=dataclasses.replace(site.detection, track_spacing_m=spacing_m)
    )
    files, rejected = discover(imagery)
    for r in rejected:
        click.echo(f"Warning: {r.path}: {r.reason}", err=True)
    acquisitions = group_acquisitions(files)
    if not acquisitions:
        raise NothingProcessed("no usable image among the inputs")
    grid = make_grid(site, resolution_m or finest_gsd(files))
    with Executor(workers=workers) as executor:
        products, _, unread = build_stack(acquisitions, site, grid, executor, background=False)
    for r in unread.values():
        click.echo(f"Warning: {r.path}: {r.reason}", err=True)
    if products is None:
        raise NothingProcessed("no image covers the AOI")
    tracks = products.tracks
    if not tracks:
        # An empty file would replace an analyst's edited lines with nothing.
        names = ", ".join(sorted({os.path.basename(f.path) for f in files}))
        raise NothingProcessed(
            f"no track found in the imagery inside the AOI ({names[:300]}); "
            f"{output} was not written"
        )
    features = [
        {
            "type": "Feature",
            "properties": {"track_id": t.track_id, "length_m": round(t.length_m, 2)},
            "geometry": _rounded(to_crs(t.line, grid.crs, WGS84).__geo_interface__),
        }
        for t in tracks
    ]
    doc = {"type": "FeatureCollection", "features": features}
    write_text(output, json.dumps(doc, indent=1) + "\n")
    n = products.n_acquisitions
    click.echo(f"{len(tracks)} tracks from {n} acquisition(s) -> {output}", err=True)


def _rounded(geom: dict, digits: int = 7) -> dict:
    coords = [[round(c, digits) for c in xy[:2]] for xy in geom["coordinates"]]
    return {"type": geom["type"], "coordinates": coords}
