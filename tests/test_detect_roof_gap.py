"""A dark patch on the middle of a roof is no coupling gap; a gap across the width is.

A locomotive's fans and exhausts (or a tank car's dome, a hopper's hatches) darken the
middle of the roof for a metre or two, and the body zone's mean colour dips there as it
does at a coupling gap; the simulated archives split such locomotives into two "tank
cars". A gap between two bodies shows ballast or shadow across the whole width.
"""

import numpy as np

from railwatch.detect import _gap_evidence, _width_gap_evidence

STEP = 0.25
N = 240


def _bands(level):
    """(3, N) colour in noise units, the same in every band."""
    return np.repeat(np.asarray(level, float)[None], 3, axis=0)


def _strip(core, edge):
    core, edge = _bands(core), _bands(edge)
    # The body zone (|offset| <= 1.35 m) is about 40 % middle, 60 % edges.
    return 0.4 * core + 0.6 * edge, core, (edge, edge.copy())


def _roof_and_gap(*, body_edge: float, body_core: float):
    core = np.full(N, body_core)
    edge = np.full(N, body_edge)
    roof = slice(72, 80)  # a 2 m dark patch on the middle of the roof
    core[roof] = 2.0
    gap = slice(160, 164)  # a 1 m coupling gap: ballast across the width
    core[gap] = 12.0
    edge[gap] = 12.0
    return _strip(core, edge), roof, gap


def test_dark_patch_on_the_roof_middle_gives_no_gap():
    (body, core, edges), roof, gap = _roof_and_gap(body_edge=40.0, body_core=40.0)
    old = _gap_evidence(body, STEP)
    new = _width_gap_evidence(body, core, edges, STEP)
    at_roof = slice(roof.start - 2, roof.stop + 3)
    at_gap = slice(gap.start - 2, gap.stop + 3)
    # The body zone alone reads the patch as a gap ...
    assert old[at_roof].max() > 10.0
    # ... the edges of the roof do not continue it, and the bonus goes.
    assert new[at_roof].max() < 1.0
    # A gap across the width keeps its full bonus.
    assert new[at_gap].max() == old[at_gap].max() > 10.0


def test_gap_between_dark_barrels_keeps_its_bonus():
    # A tank car's barrel: bright ridge in the middle, dark sides as dark as a gap's
    # ballast; the gap must still count.
    (body, core, edges), _, gap = _roof_and_gap(body_edge=12.0, body_core=40.0)
    old = _gap_evidence(body, STEP)
    new = _width_gap_evidence(body, core, edges, STEP)
    at_gap = slice(gap.start - 2, gap.stop + 3)
    assert np.array_equal(new[at_gap], old[at_gap])
    assert new[at_gap].max() > 10.0
