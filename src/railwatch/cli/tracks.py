"""``railwatch tracks``: extract track centre lines from imagery as GeoJSON (EPSG:4326)."""

from __future__ import annotations

import json
import logging
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

    Every acquisition is read onto one metric grid around the AOI, aligned to the
    stack's reference, and the rails are traced on the whole stack (a single image
    works too). ``--workers`` runs the per-pixel line evidence, most of the work, on a
    local process pool; the lines do not depend on it. Prints the number of tracks on
    stderr.
    """
    from railwatch.align import apply_shift, build_reference, estimate_shift
    from railwatch.imagery import discover, finest_gsd, group_acquisitions, read_acquisition
    from railwatch.outputs import write_text
    from railwatch.pipeline import Executor
    from railwatch.site import WGS84, aoi_in_grid, make_grid, site_from_aoi, to_crs
    from railwatch.tracks import extract_tracks

    site = site_from_aoi(aoi)
    files, rejected = discover(imagery)
    for r in rejected:
        click.echo(f"Warning: {r.path}: {r.reason}", err=True)
    acquisitions = group_acquisitions(files)
    if not acquisitions:
        raise NothingProcessed("no usable image among the inputs")
    grid = make_grid(site, resolution_m or finest_gsd(files))
    grays, valids = [], []
    for acq in acquisitions:
        scene = read_acquisition(acq, grid)
        if scene.valid.any():
            grays.append(scene.gray())
            valids.append(scene.valid)
    if not grays:
        raise NothingProcessed("no image covers the AOI")
    if len(grays) > 1:
        ref = build_reference(grays, valids)
        max_px = int(round(20.0 / grid.resolution_m))
        aligned = [
            apply_shift(g, v, estimate_shift(ref, g, valid=v, max_shift_px=max_px))
            for g, v in zip(grays, valids, strict=True)
        ]
        grays = [g for g, _ in aligned]
        valids = [v for _, v in aligned]
    aoi_grid = aoi_in_grid(site, grid)
    with Executor(workers=workers) as executor:
        tracks = extract_tracks(
            grays,
            valids,
            grid,
            aoi_grid,
            spacing_m=spacing_m,
            mapper=lambda func, args, shared: executor.map(func, args, shared=shared),
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
    click.echo(f"{len(tracks)} tracks from {len(grays)} acquisition(s) -> {output}", err=True)


def _rounded(geom: dict, digits: int = 7) -> dict:
    coords = [[round(c, digits) for c in xy[:2]] for xy in geom["coordinates"]]
    return {"type": geom["type"], "coordinates": coords}
