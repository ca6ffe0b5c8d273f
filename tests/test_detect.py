import numpy as np
import pytest

from detect_fixtures import (
    Car,
    add_cloud,
    cut_nodata,
    darken,
    display_encode,
    make_grid,
    render,
    straight_line,
    train,
)
from railwatch.detect import analyse_scene, count_distribution, learn_background, segment_track
from railwatch.site import Site, VehiclePriors
from railwatch.tracks import tracks_from_lines

LINES_Y = (22.0, 27.3)


def _yard(cars, *, width=300, seed=0, **kw):
    g = make_grid(width, 100)
    lines = [straight_line(g, y) for y in LINES_Y]
    sc = render(g, lines, cars, seed=seed, **kw)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    return sc, tracks, Site(name="test", aoi=sc.aoi)


def _analyse(sc, tracks, site, background=None):
    return analyse_scene(
        sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, background=background
    )


MIXED = train(
    0,
    10,
    [13.92, 13.92, 12.02, 15.35, 13.92, 18.0],
    types=["open", "open", "tank", "covered", "open", "locomotive"],
)


def test_one_track_with_six_cars_single_image():
    sc, tracks, site = _yard(MIXED)
    a = _analyse(sc, tracks, site)
    assert a.quality.status == "ok"
    assert a.railcars == 6
    assert a.railcars_low <= 6 <= a.railcars_high
    assert {v.track_id for v in a.vehicles} == {"T1"}
    # Vehicles lie where the cars are: each end within the coupling gap (1 m) or a metre
    # beyond it (the length prior may pull a body end across its coupling gap).
    x0 = sc.grid.bounds[0] - 5.0
    ends = sorted((v.polygon.bounds[0] - x0, v.polygon.bounds[2] - x0) for v in a.vehicles)
    truth = sorted((c.s0_m + 0.3, c.s1_m - 0.3) for c in MIXED)
    assert np.allclose(ends, truth, atol=2.0)


def test_side_rails_survive_a_shadow_over_one_side():
    from railwatch.detect import _side_rails

    offs = np.arange(-1.0, 1.01, 0.25)
    rail = np.exp(-0.5 * ((np.abs(offs) - 0.78) / 0.15) ** 2)
    rng = np.random.default_rng(0)
    empty = 0.4 + 0.2 * rail[:, None] + 0.01 * rng.standard_normal((offs.size, 60))
    shaded = empty.copy()
    shaded[offs < 0.3] *= 0.35  # a neighbour's shadow up to 0.3 m past the centre line
    flat = 0.5 + 0.01 * rng.standard_normal((offs.size, 20))  # a car roof: no rails
    prof = np.concatenate([empty, shaded, flat], axis=1)
    members = np.zeros(prof.shape[1], bool)
    members[:60] = True
    llr = np.min(_side_rails(prof, offs, members, 3), axis=0)
    assert np.median(llr[60:120]) < 0  # rails still seen under the shadow
    assert np.median(llr[120:]) > 0  # not on a roof


def test_widen_interval_brackets_count_and_scales_partial():
    from railwatch.detect import widen_interval
    from railwatch.quality import Quality

    lo, hi = widen_interval(20, 19, 21, Quality(1.0, 0.0, 0.0, "ok"))
    assert lo < 20 < hi
    lo2, hi2 = widen_interval(20, 19, 21, Quality(1.0, 0.0, 0.9, "ok"))
    assert lo2 <= lo and hi2 >= hi  # snow over the tracks: wider
    _, hi3 = widen_interval(20, 19, 21, Quality(0.5, 0.0, 0.0, "partial"))
    assert hi3 >= 2 * 20  # half the track unseen: the yard may hold twice as many
    assert widen_interval(0, 0, 0, Quality(1.0, 0.0, 0.0, "ok"))[0] == 0


def test_tight_coupling_of_identical_tank_cars():
    cars = train(1, 20, [12.02] * 7, gap_m=0.7, types=["tank"] * 7, colours=["black"] * 7)
    sc, tracks, site = _yard(cars)
    a = _analyse(sc, tracks, site)
    assert a.railcars == 7
    assert a.by_type["tank"] >= 5


def test_empty_yard_counts_zero():
    sc, tracks, site = _yard([])
    a = _analyse(sc, tracks, site)
    assert a.quality.status == "ok"
    assert a.railcars == 0 and a.railcars_low == 0 and a.vehicles == ()


def test_cloud_over_yard_gives_no_number():
    sc, tracks, site = _yard(MIXED)
    add_cloud(sc)
    a = _analyse(sc, tracks, site)
    assert a.quality.status == "obscured"
    assert a.railcars is None and a.railcars_low is None and a.railcars_high is None
    assert a.unobserved.area > 0


def test_half_nodata_counts_only_observed_cars():
    # Cars 1-3 end before x = 45 m; the swath edge at x = 50 m (column 100) leaves a third
    # of car 4 visible, which must not be counted.
    sc, tracks, site = _yard(MIXED)
    cut_nodata(sc, keep_cols=100)
    a = _analyse(sc, tracks, site)
    assert a.quality.status == "partial"
    assert a.railcars == 3
    assert a.unobserved.area > 0.6 * 2 * 146 * site.vehicles.width_m


def test_background_from_stack_detects_the_same():
    stack = [
        _yard(train(0, 20 + 10 * k, [13.92] * 3) + train(1, 90 - 15 * k, [12.02] * 2), seed=k)
        for k in range(4)
    ]
    sc, tracks, site = stack[0]
    bg = learn_background([(s.data, s.bands, s.valid) for s, _, _ in stack], sc.grid, tracks)
    assert bg is not None and bg.n_scenes == 4
    for s, _, _ in stack:
        a = _analyse(s, tracks, site, background=bg)
        assert a.railcars == 5


def test_single_scene_has_no_background():
    sc, tracks, site = _yard(MIXED)
    assert learn_background([(sc.data, sc.bands, sc.valid)], sc.grid, tracks) is None


def test_segment_track_without_gaps_uses_length_priors():
    priors = VehiclePriors(lengths_m={"open": 14.0})
    # 56 m of uniform evidence at 0.25 m and no visible gap: four 14 m cars.
    e = -2.0 * np.ones(300)
    e[20:244] = 3.0
    segs = segment_track(e, 0.25, priors)
    assert [(b - a) * 0.25 for a, b in segs] == [14.0, 14.0, 14.0, 14.0]
    assert segs[0][0] == 20 and segs[-1][1] == 244


def test_segment_track_follows_visible_gaps():
    priors = VehiclePriors()
    e = -5.0 * np.ones(200)  # empty track: z at its floor
    e[10:58] = 3.0  # 12 m
    e[62:122] = 3.0  # 15 m
    cut = np.zeros(201)
    cut[[58, 62]] = 5.0
    assert segment_track(e, 0.25, priors, cut=cut) == [(10, 58), (62, 122)]


def test_segment_track_ignores_short_blobs():
    e = -5.0 * np.ones(200)  # empty track: z at its floor, Z_THRESHOLD below
    e[50:70] = 4.0  # 5 m at full strength: a mast shadow or a car end on a ladder
    assert segment_track(e, 0.25, VehiclePriors()) == []


def test_count_distribution_peaks_at_the_count():
    e = -2.0 * np.ones(300)
    e[20:76] = 3.0
    e[80:136] = 3.0
    p = count_distribution(e, 0.25, VehiclePriors(lengths_m={"open": 14.0}))
    assert int(np.argmax(p)) == 2
    assert p.sum() == pytest.approx(1.0)


def _cloud_shadow(sc, x1_m, *, factor, haze=0.0):
    """Darken the scene west of ``x1_m`` (soft 4 m edge) as a cloud shadow, add haze."""
    from scipy import ndimage as ndi

    res = sc.grid.resolution_m
    light = np.ones(sc.grid.shape)
    light[:, : int(x1_m / res)] = factor
    light = ndi.gaussian_filter(light, 4.0 / res)
    haze_rgb = np.array([0.55, 0.6, 0.7])[:, None, None]
    sc.data = (sc.data * light[None] * (1 - haze) + haze * haze_rgb).astype(np.float32)
    return sc


@pytest.mark.parametrize(("factor", "haze"), [(0.45, 0.0), (0.45, 0.15), (0.35, 0.1)])
def test_cars_in_cloud_shadow_are_counted(factor, haze):
    # Two trains, their first half under a cloud shadow that darkens ground, ballast and
    # bodies alike: the count is the one of the lit scene.
    cars = train(0, 5, [13.92] * 5) + train(
        1, 5, [15.35] * 4, colours=["rust", "black", "blue", "green"]
    )
    sc, tracks, site = _yard(cars)
    _cloud_shadow(sc, 75.0, factor=factor, haze=haze)
    a = _analyse(sc, tracks, site)
    assert a.quality.status == "ok"
    assert a.railcars == 9
    assert a.railcars_low <= 9 <= a.railcars_high


def test_tight_cars_under_cloud_shadow_and_haze_are_counted():
    # A busy yard: five tracks 4.6 m apart, every one full of cars, the western two
    # thirds under a cloud shadow, with haze, display-encoded like an 8-bit product. The
    # shoulders between tight cars are covered by the next track's bodies and, once the
    # light is corrected, a dark body is not a shadow: every car counts.
    cols = ["rust", "blue", "green"]
    cars = []
    for t in range(5):
        cars += train(t, 5 + 3 * t, [13.92] * 9, colours=[cols[(t + i) % 3] for i in range(9)])
    g = make_grid(300, 100)
    lines = [straight_line(g, 15.0 + 4.6 * t) for t in range(5)]
    sc = render(g, lines, cars, seed=1)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    display_encode(_cloud_shadow(sc, 110.0, factor=0.42, haze=0.1))
    a = _analyse(sc, tracks, Site(name="test", aoi=sc.aoi))
    assert a.quality.status == "ok"
    assert a.railcars == 45
    assert a.railcars_low <= 45 <= a.railcars_high


def test_cloud_shade_weight_follows_the_correction():
    from railwatch.detect import ILLUM_TOLERANCE, _cloud_shade_weight

    gain = np.array([[1.0, ILLUM_TOLERANCE, 1.15, 2 * ILLUM_TOLERANCE - 1.0, 2.5]] * 3)
    w = _cloud_shade_weight(gain)
    assert w == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])


def test_covered_shoulder_only_under_a_corrected_cloud_shadow():
    from railwatch.detect import CLOUD_SHADE_LLR, _covered_shoulder

    n = 400
    dark = np.full(3, 0.1)
    gains = [(dark, np.ones((3, n)))]
    lit_side = np.full((3, n), 0.5)
    other = np.full((3, n), 0.3)
    lit_side[:, 300:] = 0.2  # covered: (0.2 - 0.1) / (0.5 - 0.1) = 0.25 of the usual
    lit_side[:, 200:300] = 0.44  # a little darker than usual ground: 0.85
    ground = ([lit_side], [other])
    empty = np.zeros(n, bool)
    empty[:200] = True
    under = np.zeros(n)
    under[100:] = 1.0
    pen = _covered_shoulder(ground, empty, gains, under)
    assert np.all(pen[:300] == 0.0)  # usual shoulders, or in full light
    assert np.all(pen[300:] == pytest.approx(CLOUD_SHADE_LLR))
    # The same dark shoulders in full light: a neighbour's shadow, not a body.
    assert np.all(_covered_shoulder(ground, empty, gains, np.zeros(n)) == 0.0)


def test_illumination_undoes_a_cloud_shadow_only():
    from railwatch.detect import _illumination
    from railwatch.quality import observe_tracks

    sc, tracks, _ = _yard(train(0, 5, [13.92] * 5))
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    # A uniformly lit scene is left (all but) alone.
    assert all(np.abs(g - 1.0).max() < 0.02 for _, g in _illumination(obs))
    _cloud_shadow(sc, 75.0, factor=0.45)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    for o, (_, g) in zip(obs, _illumination(obs), strict=True):
        s = o.frame.s_m
        assert np.median(g[:, s < 55]) > 1.6  # deep in the shadow: light undone
        assert np.allclose(g[:, s > 100], 1.0)  # in the sun: unchanged


def test_contrast_sides_keeps_shaded_empty_track_usual():
    from railwatch.detect import _contrast_sides

    rng = np.random.default_rng(0)
    n = 300
    ground = 0.5 + 0.005 * rng.standard_normal((3, n))
    bed = 0.6 + 0.005 * rng.standard_normal((3, n))
    halves = ([bed.copy()], [bed.copy()])
    grounds = ([ground.copy()], [ground.copy()])
    # Stations 200-249: a shadow over the bed and the left shoulder (its caster's side).
    for arr in (halves[0][0], halves[1][0], grounds[1][0]):
        arr[:, 200:250] *= 0.4
    # Stations 250-299: a dark body, lit ground on both sides.
    for arr in (halves[0][0], halves[1][0]):
        arr[:, 250:] = 0.2
    llr = _contrast_sides(halves, grounds, np.ones(n, bool))
    assert np.median(llr[:200]) < 0
    assert np.median(llr[200:250]) < 0  # usual contrast on the caster's side
    assert np.median(llr[250:]) > 0


def test_group_percentile_matches_numpy_per_group():
    from railwatch.detect import _padded_percentile

    rng = np.random.default_rng(3)
    values = rng.normal(size=(3, 50)).astype(np.float32)
    groups = [sorted(rng.choice(50, size=k, replace=False).tolist()) for k in (1, 2, 7, 50, 13)]
    n = np.array([len(g) for g in groups])
    idx = np.zeros((len(groups), n.max()), np.intp)
    for i, g in enumerate(groups):
        idx[i, : len(g)] = g
    for q in (0.0, 37.5, 75.0, 100.0):
        got = _padded_percentile(values, idx, n, q)
        want = np.stack([np.percentile(values[:, g], q, axis=1) for g in groups], axis=1)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_widen_interval_grows_with_inconclusive_track():
    from railwatch.detect import widen_interval
    from railwatch.quality import Quality

    ok = Quality(1.0, 0.0, 0.0, "ok")
    # sd = sqrt((0.1 x 20)^2 + 2^2) = 2.83 -> 20 -/+ 4.65
    assert widen_interval(20, 20, 20, ok) == (15, 25)
    # Ten vehicle lengths of inconclusive track add 0.5 x 10 in sd: sqrt(8 + 25) = 5.74
    assert widen_interval(20, 20, 20, ok, ambiguous=10.0) == (10, 30)


def test_widen_interval_without_history_is_wide():
    from railwatch.detect import NO_HISTORY_REL_SD, widen_interval
    from railwatch.quality import Quality

    ok = Quality(1.0, 0.0, 0.0, "ok")
    # sd = sqrt((0.6 x 20)^2 + 2^2) = 12.17 -> 20 -/+ 20.0
    assert NO_HISTORY_REL_SD == 0.6
    assert widen_interval(20, 20, 20, ok, history=False) == (0, 41)
    # Snow's larger spread is already below it: the same interval.
    snowy = Quality(1.0, 0.0, 0.9, "ok")
    assert widen_interval(20, 20, 20, snowy, history=False) == (0, 41)


def test_clear_yard_has_little_inconclusive_track():
    from railwatch.detect import _ambiguous_length_m, station_evidence
    from railwatch.quality import observe_tracks

    sc, tracks, site = _yard(MIXED)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    amb = sum(
        _ambiguous_length_m(ev, o.frame.step_m, None)
        for o, ev in zip(obs, station_evidence(obs), strict=True)
    )
    assert amb < 0.5 * min(site.vehicles.lengths_m.values())


def test_background_profile_tells_empty_track_from_bodies():
    from railwatch.detect import _background_ncc, station_evidence
    from railwatch.quality import observe_tracks

    stack = [
        _yard(train(0, 20 + 10 * k, [13.92] * 3) + train(1, 90 - 15 * k, [12.02] * 2), seed=k)
        for k in range(4)
    ]
    sc, tracks, site = _yard(train(0, 5, [13.92] * 4), seed=11)
    bg = learn_background([(s.data, s.bands, s.valid) for s, _, _ in stack], sc.grid, tracks)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    evs = station_evidence(obs)
    shapes = np.concatenate([e.shape for e in evs], axis=1)
    sizes = [o.frame.s_m.size for o in obs]
    ncc, known = _background_ncc(shapes, obs, sizes, None)
    assert not known.any()
    ncc, known = _background_ncc(shapes, obs, sizes, bg)
    s = obs[0].frame.s_m - obs[0].frame.s_m[0] - 5.0  # metres from the grid's left edge
    body = (s > 7) & (s < 5 + 4 * 13.92 - 2)
    empty = (s > 95) & (s < 140)  # empty on every date of the stack
    t1_ncc, t1_known = ncc[: sizes[0]], known[: sizes[0]]
    assert t1_known[empty].mean() > 0.9
    assert np.median(t1_ncc[empty]) > 0.8
    assert np.median(t1_ncc[body & t1_known]) < 0.5


def _coarse_yard(cars, *, dark=None):
    """Four tracks 5.3 m apart at 1 m pixels (rails sub-pixel), sun casting shadows to -y."""
    g = make_grid(140, 32, res=1.0)
    lines = [straight_line(g, y) for y in (8.0, 13.3, 18.6, 23.9)]
    sc = render(g, lines, cars, seed=3, shadow_m=(0.0, -1.8))
    if dark is not None:
        darken(sc, *dark)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    return _analyse(sc, tracks, Site(name="test", aoi=sc.aoi)), g.bounds[0] - 5.0


# Clearly visible cars on two tracks: they show which way the shadows fall.
COLOURED = train(0, 10, [13.92] * 7, colours=["rust", "blue", "red", "black", "green"] * 2) + train(
    3, 20, [15.35] * 6, colours=["red", "rust", "blue", "black", "green", "red"]
)


def test_light_car_found_by_its_cast_shadow_not_by_a_shadow_on_the_sun_side():
    # A car the colour of the ballast on T3 (y = 18.6 m): only its shadow, on the -y
    # shoulder, tells it from empty track at 1 m pixels.
    a, s0 = _coarse_yard(COLOURED + [Car(2, 60.0, 14.5, "covered", "ballast")])
    assert a.quality.status == "ok"
    t3 = [v for v in a.vehicles if v.track_id == "T3" and v.counted]
    assert len(t3) == 1
    assert 62.0 < t3[0].polygon.centroid.x - s0 < 72.5  # the car spans 60.3-74.2 m
    assert a.railcars == 14
    # The same darkening on the other (+y) shoulder of empty T3, where the shadows of a
    # neighbouring track's cars fall, is no car.
    a2, _ = _coarse_yard(COLOURED, dark=((60.6, 74.4), (18.6 + 1.7, 18.6 + 3.0), 0.45))
    assert not [v for v in a2.vehicles if v.track_id == "T3"]
    assert a2.railcars == 13
