"""Dark railcars standing at a shed and running on past it all count (issue 3).

A 45 m shed stands beside track T2, its roof eave over the shoulder on every date. On
some dates its wall, in shade, leans over the bed: a near-black surface along the whole
shed, the same on each of those dates, so the archive learns it as the structure's
colour (``Background.structure``). Coal-laden open wagons are as dark and as neutral.
A rake of them standing at the shed and running on 20 m past both of its ends is
railcars, whatever their paint: every car counts. A wall date counts no car at the shed.
"""

import numpy as np

from detect_fixtures import COLOURS, count_archive, shed_date, train

WALL = 0.38 * np.array(COLOURS["black"])  # the shaded wall: as dark and neutral as coal

# Per date: whether the shed's wall leans over T2, and the x (m) where a rake of six
# black open wagons on T2 starts (None: no rake). The last date's rake runs from 20 m
# before the shed to 20 m past it.
DATES = (
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (False, None),
    (False, 40.0),
)


def _scene(k, wall, rake_x):
    rake = [] if rake_x is None else train(1, rake_x, [13.92] * 6, colours=["black"] * 6,
                                            types=["open"] * 6)  # fmt: skip
    return shed_date(
        k,
        rake,
        paints=["rust", "blue", "white", "green"],
        wall=WALL if wall else None,
        seed=60 + k,
        texture_seed=300 + k,
    )


def test_dark_rake_running_past_a_shed_counts_every_car():
    scenes = [_scene(k, wall, rake) for k, (wall, rake) in enumerate(DATES)]
    bg, got, want = count_archive(scenes)
    # The premise: the wall dates taught the archive a structure of the wagons' colour.
    assert "T2" in bg.structure and np.isfinite(bg.structure["T2"][0]).any()
    assert got == want
