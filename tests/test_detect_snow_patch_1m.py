"""1.0 m, patchy snow, sun known: a drift of snow over an empty bed is no railcar.

A 1.0 m image does not resolve the rails: a bed under a drift of snow in a bare yard
differs from the bare beds by its colour alone, as a body does. But every body, down to
a flat car's deck, shades the shoulder on its shadow side all along its length; a drift
leaves it in the sun. The yard is rendered at 0.5 m and imaged at 1.0 m (pixels
averaged, then blurred as by the optics), so that the scene does not resolve its pixel.
"""

import numpy as np
from scipy import ndimage as ndi

from detect_fixtures import Car, _line_coords, make_grid, render, straight_line, train
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (10.0, 15.0, 20.0, 25.0)

# Shade is lit by the blue sky alone: darker, and bluer than the sunlit ground (R, G, B).
SKY_TINT = np.array([0.40, 0.47, 0.62])

# Snow lies in patches across the yard (metres from the grid's left edge).
SNOW_PATCHES = ((10.0, 35.0), (95.0, 108.0))

# The sun low in the north: a 3.5 m body's shadow reaches 4 m to the south, from the
# body's side on (the body stands on the track: its shadow is one piece with it).
SHADOW_M = (0.0, -4.0)
ELEVATION_DEG = 41.0

# Drifts of snow over the bed and both shoulders of an empty track: (track, x0, x1) m.
DRIFTS = ((0, 40.0, 55.0), (2, 45.0, 60.0), (2, 75.0, 90.0))


def _yard(cars, drifts=()):
    """Four tracks 5 m apart imaged at 1.0 m, snow in patches and drifts, sun known."""
    g = make_grid(260, 70)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    kw = {"seed": 5, "shadow_m": (0.0, 0.0)}
    snowy = render(g, lines, cars, snow=True, **kw)
    bare = render(g, lines, cars, **kw).data
    empty = render(g, lines, [], **kw).data
    body = np.abs(bare - empty).sum(axis=0) > 0.05
    x = (np.arange(g.width) + 0.5) * g.resolution_m
    px, py = np.meshgrid(g.bounds[0] + x, g.bounds[3] - (np.arange(g.height) + 0.5) * 0.5)
    snow = np.zeros(g.shape, bool)
    for x0, x1 in SNOW_PATCHES:
        snow |= ((x >= x0) & (x < x1))[None, :]
    for k, x0, x1 in drifts:
        u, _ = _line_coords(lines[k], px, py)
        snow |= (np.abs(u) < 3.0) & (px - g.bounds[0] >= x0) & (px - g.bounds[0] < x1)
    lit = np.where(snow[None] & ~body[None], snowy.data, bare)
    # Each body's shadow: its footprint swept along the sun's direction.
    rows = int(round(-SHADOW_M[1] / g.resolution_m))
    shade = np.zeros_like(body)
    for k in range(1, rows + 1):
        shade[k:] |= body[:-k]
    shade &= ~body
    data = np.where(shade[None], lit * SKY_TINT[:, None, None], lit)
    # Imaged at 1.0 m: 2 x 2 pixels averaged, blurred by the optics.
    coarse = make_grid(130, 35, res=1.0)
    data = data.reshape(3, coarse.height, 2, coarse.width, 2).mean(axis=(2, 4))
    data = ndi.gaussian_filter(data, sigma=(0.0, 0.8, 0.8)).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    a = analyse_scene(
        data,
        snowy.bands,
        np.ones(coarse.shape, bool),
        coarse,
        tracks,
        snowy.aoi,
        Site(name="test", aoi=snowy.aoi),
        sun_azimuth_deg=0.0,
        sun_elevation_deg=ELEVATION_DEG,
    )
    return a, g.bounds[0]


# Trains on T2 and T4 (a car the colour of ballast at the end of T4's), T1 and T3 empty.
CARS = train(1, 20, [13.92] * 3, colours=["rust", "blue", "black"])
CARS += train(3, 60, [15.35] * 2, colours=["red", "green"])
CARS += [Car(3, 98.0, 13.0, "covered", "ballast")]


def test_snow_drift_over_an_empty_bed_is_no_railcar():
    a, _ = _yard(CARS, DRIFTS)
    assert a.quality.status == "ok"
    assert not [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]


def test_ballast_coloured_car_casting_its_shadow_still_counts():
    # The grey car on T4 differs from the bed hardly at all; its own shadow tells it.
    a, x0 = _yard(CARS, DRIFTS)
    t4 = sorted(v.polygon.centroid.x - x0 for v in a.vehicles if v.track_id == "T4" and v.counted)
    assert len(t4) == 3
    assert 98.0 < t4[-1] < 111.0  # the grey car spans 98.3-110.7 m
