"""The empty-track colour is chosen against the archive's ratio of empty track to ground."""

import numpy as np
from shapely.geometry import LineString

from detect_fixtures import make_grid, render, straight_line, train
from railwatch.detect import (
    Background,
    BackgroundSample,
    _archive_ratio,
    _empty_ratio,
    analyse_scene,
    combine_background,
    learn_background,
)
from railwatch.site import Site
from railwatch.tracks import Track, tracks_from_lines


def _coarse_tracks():
    """Four tracks 5.3 m apart at 1 m pixels (rails sub-pixel)."""
    g = make_grid(160, 32, res=1.0)
    lines = [straight_line(g, y) for y in (8.0, 13.3, 18.6, 23.9)]
    return g, lines, tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])


def test_fleet_of_black_cars_is_not_taken_for_empty_track():
    # A busy date: black cars cover 87 % of every track, so black is the commonest
    # colour of the yard. The quiet dates of the archive say what empty track looks
    # like against the ground between the tracks; the fleet is far darker than that.
    g, lines, tracks = _coarse_tracks()
    quiet = [
        render(g, lines, train(k % 4, 20 + 12 * k, [13.92] * 2, colours=["rust", "blue"]), seed=k)
        for k in range(5)
    ]
    fleet = [c for t in range(4) for c in train(t, 8 + 3 * t, [13.92] * 10, colours=["black"] * 10)]
    busy = render(g, lines, fleet, seed=9, shadow_m=(0.0, -1.8))
    bg = learn_background([(s.data, s.bands, s.valid) for s in [*quiet, busy]], g, tracks)
    assert bg is not None
    # Fixture ballast (0.47 with dark rails and sleepers) against ground (0.56): darker,
    # but far from the black cars (0.11: about -1.6).
    assert set(bg.empty_ratio) == {"red", "green", "blue"}
    assert all(-0.8 < r < -0.1 for r in bg.empty_ratio.values())
    site = Site(name="test", aoi=busy.aoi)
    a = analyse_scene(busy.data, busy.bands, busy.valid, g, tracks, busy.aoi, site, background=bg)
    assert abs(a.railcars - len(fleet)) <= 2
    assert a.railcars_low <= len(fleet) <= a.railcars_high


def test_empty_ratio_ignores_the_light_above_the_dark_level():
    dark = np.array([0.05, 0.06, 0.08])
    colour, ground = np.array([0.40, 0.42, 0.45]), np.array([0.55, 0.52, 0.50])
    r = _empty_ratio(colour, ground, dark)
    # A cloud shadow scales what lies above the haze, bed and ground alike.
    for light in (0.3, 0.6, 1.0):
        shaded = _empty_ratio(dark + light * (colour - dark), dark + light * (ground - dark), dark)
        assert np.allclose(shaded, r)
    assert np.allclose(r, np.log((colour - dark) / (ground - dark)))


def test_archive_ratio_is_the_median_over_dates_and_unused_on_snow():
    def sample(ratio):
        return BackgroundSample({}, {}, {}, 0.25, ratio)

    quiet = {"red": -0.05, "green": -0.04, "blue": -0.02}
    busy = {"red": -1.6, "green": -1.6, "blue": -1.4}  # a date that took cars for track
    samples = [sample(quiet), sample(quiet), sample(busy), sample(quiet), sample({})]
    bg = combine_background(samples, [])
    assert bg is None  # no tracks: nothing to learn
    bg = combine_background(samples, [Track("T1", LineString([(0, 0), (10, 0)]))])
    assert bg is not None
    assert bg.empty_ratio == quiet
    ref = _archive_ratio(bg, ("red", "green", "blue", "nir"), snowy=False)
    assert np.allclose(ref[:3], [-0.05, -0.04, -0.02]) and np.isnan(ref[3])
    assert _archive_ratio(bg, ("red", "green", "blue"), snowy=True) is None
    assert _archive_ratio(Background(), ("red",), snowy=False) is None
    assert _archive_ratio(bg, ("nir",), snowy=False) is None
