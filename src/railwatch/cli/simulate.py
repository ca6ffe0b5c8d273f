"""``railwatch simulate``: render synthetic yard scenes with exact truth."""

from __future__ import annotations

from pathlib import Path

import click

from railwatch.cli.options import seed_opt, site_opt
from railwatch.simulate import DEFAULT_DATES


@click.command(name="simulate")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--dates",
    type=click.IntRange(min=1, max=500),
    default=DEFAULT_DATES,
    show_default=True,
    help="Number of acquisitions; 16 is the fixed sample story, other numbers draw dates "
    "within its phases.",
)
@click.option(
    "--gsd",
    "gsd_m",
    type=click.FloatRange(min=0.1, max=5.0),
    default=None,
    help="Ground sample distance of every acquisition, metres "
    "[default: 0.5, with one at 0.3 and one at 1.0].",
)
@click.option(
    "--catenary",
    is_flag=True,
    help="Electrified yard: overhead-line portals (masts and beams) over the main tracks, "
    "with their shadows across tracks and vehicles.",
)
@seed_opt
@site_opt
def command(
    out_dir: Path,
    dates: int,
    gsd_m: float | None,
    catenary: bool,
    seed: int,
    site_path: Path | None,
) -> None:
    """Render a synthetic rail yard as dated GeoTIFFs plus truth in OUT_DIR/truth.

    The yard lies inside the AOI of --site (default: the built-in Tumangang sample yard,
    whose AOI is the one in configs/tumangang.yaml). The same --seed gives identical files.
    """
    import numpy as np

    from railwatch.simulate import simulate_yard
    from railwatch.site import load_site

    aoi = load_site(site_path).aoi if site_path is not None else None
    result = simulate_yard(
        out_dir,
        rng=np.random.default_rng(seed),
        dates=dates,
        gsd_m=gsd_m,
        aoi=aoi,
        catenary_portals=catenary,
    )
    statuses: dict[str, int] = {}
    for a in result.acquisitions:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    click.echo(
        f"Wrote {len(result.files)} files for {len(result.acquisitions)} acquisitions "
        f"({summary}) to {out_dir}; truth in {result.truth_dir}",
        err=True,
    )
