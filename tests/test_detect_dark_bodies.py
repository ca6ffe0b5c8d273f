"""Black cars in a busy yard: a dark body is not empty track keeping its usual contrast."""

import numpy as np

from detect_fixtures import make_grid, render, straight_line, train
from railwatch.detect import Z_THRESHOLD, _flank_evidence, analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines


def _yard(glint: float):
    """Four tracks 5 m apart at 0.5 m pixels; six glossy black tanks on T3 among trains.

    The sun is on the +y side (shadows 1.3 m towards -y): each tank's barrel mirrors it
    in a bright stripe on that side of its crest (``glint``).
    """
    g = make_grid(400, 64, res=0.5)
    lines = [straight_line(g, y) for y in (9.0, 14.0, 19.0, 24.0)]
    cars = (
        train(0, 8, [13.92] * 5, colours=["rust", "blue", "red", "green", "white"])
        + train(1, 100, [15.35] * 5, colours=["red", "rust", "blue", "green", "white"])
        + train(2, 60, [12.02] * 6, types=["tank"] * 6, colours=["black"] * 6)
        + train(3, 30, [13.92] * 5, colours=["green", "white", "rust", "blue", "red"])
    )
    sc = render(g, lines, cars, seed=3, shadow_m=(0.0, -1.3), glint=glint)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    return analyse_scene(
        sc.data,
        sc.bands,
        sc.valid,
        sc.grid,
        tracks,
        sc.aoi,
        Site(name="test", aoi=sc.aoi),
    )


def test_glossy_black_tanks_are_cars():
    # The sunlit half of a black tank, its bright stripe and dark flank averaged, keeps
    # ballast's contrast to the ground beside it; its flank beyond the rail does not.
    a = _yard(glint=0.75)
    t3 = [v for v in a.vehicles if v.track_id == "T3" and v.counted]
    assert len(t3) == 6
    assert a.railcars == 21


def _flank_inputs(outer_level: np.ndarray):
    """Bed halves, their outer zones and shoulders (3 bands) of 300 empty stations and
    ``outer_level.size`` stations whose left (lit) half averages to the empty bed."""
    rng = np.random.default_rng(0)
    n_e, n_b = 300, outer_level.size
    n = n_e + n_b
    bed = 0.47 + rng.normal(0, 0.005, (3, n))
    outer = 0.49 + rng.normal(0, 0.005, (3, n))
    outer[:, n_e:] = outer_level[None, :]
    ground_lit = 0.52 + rng.normal(0, 0.005, (3, n))
    ground_shade = 0.30 + rng.normal(0, 0.005, (3, n))
    halves = ([bed], [bed * 0.5])  # the right half darker (its own shading)
    outers = ([outer], [outer * 0.5])
    ground = ([ground_lit], [ground_shade])
    return halves, outers, ground, np.ones(n, bool), slice(n_e, None)


def test_flank_off_the_half_is_a_body():
    # Left halves all keep the usual contrast; the dark flank (0.2) of the last ones
    # does not continue it, a flank like ballast's (0.49) does.
    halves, outers, ground, seen, sel = _flank_inputs(np.r_[np.full(20, 0.2), np.full(20, 0.49)])
    z = _flank_evidence(halves, outers, ground, seen, np.ones(seen.shape, bool))
    assert (z[sel][:20] > Z_THRESHOLD + 3).all()
    assert (z[sel][20:] < Z_THRESHOLD).all()
    assert np.mean(z[:300] < Z_THRESHOLD) > 0.95
