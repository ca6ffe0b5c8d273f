"""Patchy snow, sun known: shade is told by its blue tint, not by its darkness.

A train's shadow over the next, empty bed leaves that track's far shoulder in the sun (a
body there would shade it itself), while a car of any colour shades its own far shoulder.
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

# A bed under thin snow: paler than ballast, darker than the snow between the tracks.
SNOW_BED = np.array([0.66, 0.67, 0.70])

# Snow lies in patches across the yard (metres from the grid's left edge), a third of it.
SNOW_PATCHES = ((10.0, 35.0), (55.0, 70.0), (95.0, 108.0))

# Share of the rails' contrast left at 0.5 m (worn, dusty, half under snow): the rails
# alone no longer tell a bed from a body.
RAILS_SHOWING = 0.3

# The sun low in the north: a 3.5 m body's shadow reaches 4 m to the south.
SHADOW_M = (0.0, -4.0)
ELEVATION_DEG = 41.0


def _patchy_yard(cars):
    """Four tracks 5 m apart at 0.5 m pixels, snow in patches; the sun known."""
    g = make_grid(260, 70)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    kw = {"seed": 5}
    snowy = render(g, lines, cars, snow=True, shadow_m=(0.0, 0.0), **kw)
    bare = render(g, lines, cars, shadow_m=(0.0, 0.0), **kw).data
    shaded = render(g, lines, cars, snow=True, shadow_m=SHADOW_M, **kw).data
    empty = render(g, lines, [], snow=True, shadow_m=(0.0, 0.0), **kw).data
    body = np.abs(snowy.data - empty).sum(axis=0) > 0.05
    x = (np.arange(g.width) + 0.5) * g.resolution_m
    y = g.bounds[3] - (np.arange(g.height) + 0.5) * g.resolution_m
    on_snow = np.zeros(g.width, bool)
    for x0, x1 in SNOW_PATCHES:
        on_snow |= (x >= x0) & (x < x1)
    # Faint rails on every bed; under snow the bed is pale (same noise throughout).
    detail = [d - ndi.uniform_filter(d, size=(1, 5, 5)) for d in (snowy.data, bare)]
    snow_bed, bare_bed = snowy.data.copy(), bare.copy()
    px, py = np.meshgrid(g.bounds[0] + x, y)
    for line in lines:
        u, _ = _line_coords(line, px, py)
        bed = (np.abs(u) < 1.3) & ~body
        snow_bed[:, bed] = SNOW_BED[:, None] + RAILS_SHOWING * detail[0][:, bed]
        bare_bed[:, bed] = (bare - (1.0 - RAILS_SHOWING) * detail[1])[:, bed]
    lit = np.where(on_snow[None, None], snow_bed, bare_bed)
    # The fixture's shadows are grey; tint them as the sky lights them.
    shade = shaded.mean(axis=0) < 0.75 * snowy.data.mean(axis=0)
    snowy.data = np.where(shade[None], lit * SKY_TINT[:, None, None], lit).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=snowy.aoi)
    a = analyse_scene(
        snowy.data,
        snowy.bands,
        snowy.valid,
        snowy.grid,
        tracks,
        snowy.aoi,
        site,
        sun_azimuth_deg=0.0,
        sun_elevation_deg=ELEVATION_DEG,
    )
    return a, g.bounds[0] - 5.0


# Trains on T2 and T4; the low sun casts their shadows over the beds of T1 and T3.
CASTERS = train(1, 20, [13.92] * 6, colours=["rust", "blue", "red", "black", "green", "rust"])
CASTERS += train(3, 35, [15.35] * 5, colours=["blue", "red", "rust", "green", "black"])
# A car the colour of the ballast on bare ground: told by its rails (faint) and shadow.
GREY = Car(3, 113.0, 13.0, "covered", "ballast")


def test_neighbour_shadow_on_patchy_snow_is_no_train():
    a, _ = _patchy_yard(CASTERS + [GREY])
    assert a.quality.status == "ok"
    assert not [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]
    assert a.railcars == 12


def test_grey_car_casting_its_own_shadow_counts():
    a, s0 = _patchy_yard(CASTERS + [GREY])
    t4 = sorted(v.polygon.centroid.x - s0 for v in a.vehicles if v.track_id == "T4" and v.counted)
    assert len(t4) == 6
    assert 116.0 < t4[-1] < 123.0  # the grey car spans 113.3-125.7 m


def test_car_in_a_neighbour_shadow_keeps_counting():
    # A red car on T1 in the shadow of the T2 train shades its own far shoulder.
    a, s0 = _patchy_yard(CASTERS + [GREY, Car(0, 50.0, 13.5, "covered", "red")])
    t1 = [v for v in a.vehicles if v.track_id == "T1" and v.counted]
    assert len(t1) == 1
    assert 52.0 < t1[0].polygon.centroid.x - s0 < 62.0  # the car spans 50.3-63.2 m
    assert a.railcars == 13
