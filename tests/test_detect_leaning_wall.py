"""A shed's wall leaning over the track is no railcar, whatever light it is in (issue 3).

A 45 m building stands beside track T2, its roof eave over the shoulder on every date.
In some off-nadir views its wall face leans over the bed from the shed's side: one dark
surface from the shoulder to past the centre line, lit differently on each date (so no
one recurring colour marks it over the archive). On other dates cars of changing paints
stand at the shed. The wall dates count no car at the shed; the car dates count theirs.
"""

import numpy as np

from detect_fixtures import count_archive, shed_date, train

WALL = np.array([0.10, 0.16, 0.36])

# Per date: brightness of the leaning wall (None: the wall does not show), and the
# paints of a rake of two cars standing at the shed (None: none).
DATES = (
    (1.0, None),
    (None, ["red", "white"]),
    (0.6, None),
    (None, ["green", "rust"]),
    (1.5, None),
    (None, ["white", "blue"]),
    (None, None),
    (None, None),
    (None, None),
    (None, None),
)


def _scene(k, wall, rake):
    cars = [] if rake is None else train(1, 66.0, [15.35] * 2, colours=rake)
    return shed_date(
        k,
        cars,
        paints=["rust", "blue", "black", "green"],
        wall=None if wall is None else wall * WALL,
        seed=30 + k,
        texture_seed=200 + k,
    )


def test_leaning_wall_in_any_light_is_no_railcar_and_cars_at_the_shed_count():
    scenes = [_scene(k, wall, rake) for k, (wall, rake) in enumerate(DATES)]
    _, got, want = count_archive(scenes)
    assert got == want


def test_no_building_where_another_track_runs_in_the_shoulder():
    # A turnout: the diverging track leaves T1 at x = 50 m and is 5 m away by x = 100 m.
    # Near the frog its cars cover T1's shoulder on busy dates; that is no building.
    from shapely.geometry import LineString

    from railwatch.detect import _converging, _structure_side
    from railwatch.tracks import Track

    t1 = Track("T1", LineString([(0.0, 0.0), (200.0, 0.0)]))
    t2 = Track("T2", LineString([(50.0, 0.0), (100.0, 5.0), (200.0, 5.0)]))
    near = _converging([t1, t2], {"T1": 800})["T1"]
    x = (np.arange(800) + 0.5) * 0.25
    # within 2.4 + 1.35 m of the diverging centre line: x < 50 + 50 * 3.75 / 5
    assert near[(x > 52) & (x < 85)].all()
    assert not near[(x < 45) | (x > 92)].any()
    # A building on the left on 8 of 10 dates is one; on 6 of 10 it is not.
    f = np.zeros((10, 2, 800), np.float32)
    f[:8, 0, 100:300] = 1.0
    f[:6, 1, 500:700] = 1.0
    side = _structure_side(f, 40)
    assert (side[100:300] == 1).all() and not side[:100].any() and not side[300:].any()
