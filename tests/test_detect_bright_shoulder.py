"""A bright foreign shoulder is no more sun: the rest of a cloud-free yard stays unlit (#3)."""

import numpy as np

from detect_fixtures import make_grid, render, straight_line, train
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (20.0, 25.3)
PLATFORM_X = (60.0, 105.0)


def _platform_yard():
    """Two tracks in full sun, a concrete platform on the outer shoulder for 45 of 200 m."""
    g = make_grid(400, 90)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    cars = train(0, 8.0, [13.92] * 2, colours=["rust", "blue"])
    sc = render(g, lines, cars, seed=10, shadow_m=(0.0, -1.3))
    minx, miny, _, maxy = g.bounds
    xs = (np.arange(g.width) + 0.5) * g.resolution_m
    ys = maxy - (np.arange(g.height) + 0.5) * g.resolution_m - miny
    px, py = np.meshgrid(xs, ys)
    edge = (px >= PLATFORM_X[0]) & (px <= PLATFORM_X[1])
    edge &= (py >= TRACKS_Y[1] + 1.9) & (py <= TRACKS_Y[1] + 4.0)
    sc.data[:, edge] = np.float32(0.66)
    return sc, tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])


def test_a_bright_platform_does_not_shade_the_rest_of_the_yard():
    """The platform's shoulder is brighter ground, not more light: no gain anywhere."""
    from railwatch.detect import ILLUM_TOLERANCE, _light
    from railwatch.quality import observe_tracks

    sc, tracks = _platform_yard()
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    # Empty track away from the platform is as bright as beside it: nothing to undo.
    for _, gain, _ in _light(obs):
        assert gain.mean(axis=0).max() < ILLUM_TOLERANCE
