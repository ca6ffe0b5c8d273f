"""Scenes coarser than the grid: fine detail, calibrated contrast, inconclusive shade."""

import math

import numpy as np
from scipy import ndimage as ndi
from shapely.geometry import box

from detect_fixtures import make_grid, render, straight_line, train
from railwatch.detect import (
    FINE_DETAIL_MIN,
    SHADOW_MIN_STATIONS,
    Z_THRESHOLD,
    StationEvidence,
    _ambiguous_length_m,
    _contrast_floor,
    _fine_detail,
    analyse_scene,
    learn_background,
    station_evidence,
)
from railwatch.quality import observe_tracks
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

LINES_Y = (10.0, 15.3)
CARS = train(0, 8, [13.92] * 4, colours=["black", "rust", "black", "blue"]) + train(
    1, 20, [15.35] * 3, colours=["black", "green", "black"]
)


def _scene(res):
    g = make_grid(int(round(120 / res)), int(round(26 / res)), res=res)
    lines = [straight_line(g, y) for y in LINES_Y]
    return render(g, lines, CARS, seed=2, shadow_m=(0.0, -1.8)), lines


def _upsampled(res=1.0, factor=2):
    """The yard seen at ``res`` pixels, delivered on a grid ``factor`` times finer (cubic)."""
    sc, lines = _scene(res)
    fine = make_grid(sc.grid.width * factor, sc.grid.height * factor, res=res / factor)
    sc.data = np.stack([ndi.zoom(b, factor, order=3) for b in sc.data]).astype(np.float32)
    sc.valid = np.ones(fine.shape, bool)
    sc.grid = fine
    return sc, lines


def test_fine_detail_tells_a_scene_coarser_than_the_grid():
    sharp, _ = _scene(0.5)
    assert _fine_detail(sharp.data, sharp.valid) >= FINE_DETAIL_MIN
    # The same yard at 1 m pixels on the 0.5 m grid: no detail at the grid's pixel.
    coarse, _ = _upsampled()
    assert coarse.data.shape == sharp.data.shape
    assert _fine_detail(coarse.data, coarse.valid) < FINE_DETAIL_MIN
    # A grid at the scene's own 1 m pixel is resolved again.
    native, _ = _scene(1.0)
    assert _fine_detail(native.data, native.valid) >= FINE_DETAIL_MIN
    # Too few valid pixels to judge: taken as resolved.
    assert _fine_detail(coarse.data, np.zeros(coarse.valid.shape, bool)) == 1.0


def _contrast_case(f_b, f_e, n=400):
    """Contrast evidence of n clear bodies and n empty stations with the given shares usual."""
    usual, broken = Z_THRESHOLD - 2.0, Z_THRESHOLD + 4.0
    body = np.where(np.arange(n) < f_b * n, usual, broken)
    empty = np.where(np.arange(n) < f_e * n, usual, broken)
    contrast = np.r_[body, empty]
    colour_z = np.r_[np.full(n, Z_THRESHOLD + 6.0), np.full(n, Z_THRESHOLD - 3.0)]
    members = np.r_[np.zeros(n, bool), np.ones(n, bool)]
    return contrast, colour_z, colour_z.copy(), members, np.ones(2 * n, bool)


def test_contrast_floor_is_what_the_clear_bodies_allow():
    # Half the clear bodies keep the usual contrast (a shoulder blurred into the body),
    # 90 % of empty track: seeing it is worth log(0.5 / 0.9) against a body.
    floor = _contrast_floor(*_contrast_case(0.5, 0.9))
    assert math.isclose(floor, Z_THRESHOLD + math.log(0.5 / 0.9), rel_tol=1e-6)
    # No clear body keeps it (sharp scene): the floor is far below any evidence.
    assert _contrast_floor(*_contrast_case(0.0, 0.9)) < Z_THRESHOLD - 6.0
    # More bodies than empty stations keep it: no more than even odds.
    assert _contrast_floor(*_contrast_case(0.95, 0.9)) == Z_THRESHOLD
    # The scene's empty track mostly breaks the contrast (snow): not calibrated.
    assert _contrast_floor(*_contrast_case(0.5, 0.3)) == -np.inf
    # Too few clear bodies to tell.
    contrast, colour_z, edge, members, seen = _contrast_case(0.5, 0.9)
    few = np.arange(contrast.size) >= 400 - (SHADOW_MIN_STATIONS - 1)
    assert _contrast_floor(contrast, colour_z, edge, members, seen & few) == -np.inf


def test_unsure_stations_count_as_inconclusive():
    n, step = 200, 0.25
    z = np.full(n, Z_THRESHOLD - 6.0)  # surely empty by its evidence
    unsure = np.zeros(n, bool)
    unsure[40:120] = True
    colour = np.zeros((3, n))
    ev = StationEvidence(z, np.ones(n, bool), colour, np.zeros((5, n)), None, unsure)
    assert math.isclose(_ambiguous_length_m(ev, step, None), 80 * step)
    # Unobserved or under a static structure: not counted.
    static = np.zeros(n, bool)
    static[100:] = True
    assert math.isclose(_ambiguous_length_m(ev, step, static), 60 * step)
    plain = StationEvidence(z, np.ones(n, bool), colour, np.zeros((5, n)))
    assert _ambiguous_length_m(plain, step, None) == 0.0


def _evidence(sc, lines, resolved):
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=sc.aoi)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, site.aoi)
    return station_evidence(obs, resolved=resolved)


def test_only_unresolved_scenes_mark_shade_unsure():
    sc, lines = _upsampled()
    evs = _evidence(sc, lines, resolved=False)
    unsure = np.concatenate([e.unsure for e in evs])
    z = np.concatenate([e.z for e in evs])
    seen = np.concatenate([e.observed for e in evs])
    # Unsure stations are called empty by their evidence, and are a minority.
    assert not (unsure & (z >= Z_THRESHOLD + 1.0)).any()
    assert unsure[seen].mean() < 0.5
    # The same scene taken as resolved has none (the rails tell shade from a body).
    evs = _evidence(sc, lines, resolved=True)
    assert not np.concatenate([e.unsure for e in evs]).any()


# ---------------------------------------------------------------- a track's own shoulder

SNOW_TRACKS_Y = tuple(10.0 + 5.3 * k for k in range(8))
SNOW_CARS = train(0, 25, [14.0] * 5, colours=["black"] * 5) + train(
    2, 30, [14.5] * 5, colours=["blue", "red", "rust", "green", "red"]
)
SKY_TINT = np.array([0.55, 0.62, 0.75])  # shade on snow: lit by the blue sky alone


def _snowy_1m_yard(*, dark_shoulder: float):
    """Eight snow-covered tracks seen at 1 m pixels on a 0.5 m grid, low sun to -y.

    The shadow-side shoulder of T5 (its -y side) is darker by ``dark_shoulder`` along
    the whole track: a bed off its surveyed line, snow drifted on one side.
    """
    res, factor = 1.0, 2
    g = make_grid(130, 60, res=res)
    lines = [straight_line(g, y) for y in SNOW_TRACKS_Y]
    sc = render(g, lines, SNOW_CARS, seed=5, snow=True, shadow_m=(0.0, -3.0))
    lit = render(g, lines, SNOW_CARS, seed=5, snow=True, shadow_m=(0.0, 0.0)).data
    shade = sc.data.mean(axis=0) < 0.75 * lit.mean(axis=0)
    data = np.where(shade[None], lit * SKY_TINT[:, None, None], lit)
    ys = g.bounds[3] - (np.arange(g.height) + 0.5) * res - g.bounds[1]
    strip = (ys > SNOW_TRACKS_Y[4] - 3.3) & (ys < SNOW_TRACKS_Y[4] - 1.8)
    data[:, strip, :] *= 1.0 - dark_shoulder
    fine = make_grid(g.width * factor, g.height * factor, res=res / factor)
    data = np.stack([ndi.zoom(b, factor, order=3) for b in data]).astype(np.float32)
    valid = np.ones(fine.shape, bool)
    flines = [straight_line(fine, y) for y in SNOW_TRACKS_Y]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(flines)])
    minx, miny, maxx, maxy = fine.bounds
    aoi = box(minx + 2, miny + 2, maxx - 2, maxy - 2)
    site = Site(name="test", aoi=aoi)
    return analyse_scene(data, ("red", "green", "blue"), valid, fine, tracks, aoi, site)


def test_a_shoulder_dark_all_along_its_track_is_no_cast_shadow():
    # The cars count by their colour and their shadows as usual...
    plain = _snowy_1m_yard(dark_shoulder=0.0)
    assert plain.quality.snow > 0.5
    assert plain.railcars == 10
    # ...and a shoulder darker than the scene's all along T5 is T5's usual look, not a
    # train of ballast-coloured cars casting their shadows on it.
    a = _snowy_1m_yard(dark_shoulder=0.5)
    assert not [v for v in a.vehicles if v.track_id == "T5" and v.counted]
    assert a.railcars == 10


# ------------------------------------------------------- archive bed and a neighbour's shadow

ARCHIVE_TRACKS_Y = (8.0, 13.3, 18.6, 23.9)


def _shaded_bed_yard(*, shadow_m: float):
    """A low sun throws a train's shadow on T3 over the empty T2, at 1 m pixels.

    Five quiet dates make the archive; the busy date has seven cars on T3 and three on
    T1. Shadows are continuous from each body out to ``shadow_m`` (-y). All scenes are
    delivered on a 0.5 m grid (cubic), so the rails are not resolved.
    """
    g = make_grid(160, 32, res=1.0)
    fine = make_grid(320, 64, res=0.5)
    lines = [straight_line(g, y) for y in ARCHIVE_TRACKS_Y]
    flines = [straight_line(fine, y) for y in ARCHIVE_TRACKS_Y]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(flines)])

    def up(data):
        return np.stack([ndi.zoom(b, 2, order=3) for b in data]).astype(np.float32)

    quiet = [
        render(
            g,
            lines,
            train(k % 4, 20 + 12 * k, [13.92] * 2, colours=["rust", "blue"]),
            seed=k,
        )
        for k in range(5)
    ]
    cars = train(
        2,
        20,
        [13.92] * 7,
        colours=["rust", "blue", "black", "red", "green", "rust", "blue"],
    ) + train(0, 40, [15.35] * 3, colours=["red", "blue", "rust"])
    # The union of the footprints moved by 0.5 m steps: a shadow attached to its body.
    busy = np.min(
        [
            render(g, lines, cars, seed=9, shadow_m=(0.0, k)).data
            for k in np.arange(-0.5, shadow_m - 0.01, -0.5)
        ],
        axis=0,
    )
    bands = ("red", "green", "blue")
    valid = np.ones(fine.shape, bool)
    bg = learn_background(
        [(up(s.data), bands, valid) for s in quiet] + [(up(busy), bands, valid)],
        fine,
        tracks,
    )
    minx, miny, maxx, maxy = fine.bounds
    aoi = box(minx + 2, miny + 2, maxx - 2, maxy - 2)
    site = Site(name="test", aoi=aoi)
    return analyse_scene(up(busy), bands, valid, fine, tracks, aoi, site, background=bg)


def test_an_empty_bed_in_a_neighbours_shadow_is_no_dark_car():
    # T2's bed lies in the shadow of T3's train all along it. The scene's own neighbour
    # shadows (side, tint, depth) explain it; against its own empty bed over the archive
    # it is darker than the ground's full shadow only because the bed sits nearer the
    # scene's dark level, which no body makes.
    a = _shaded_bed_yard(shadow_m=-5.3)
    assert not [v for v in a.vehicles if v.track_id == "T2" and v.counted]
    assert a.railcars == 10
