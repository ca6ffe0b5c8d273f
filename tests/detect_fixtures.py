"""Tiny synthetic yard scenes with exact truth for the detection-core tests.

A scene is rendered at 4x supersampling and box-averaged to the grid: ground with gentle
variation, a ballast bed per track, dark rails 1.52 m apart, sleepers, and cars of known
length, colour and type with a shadow on one side. Nothing here is fitted to the
detector: it is a plain physical drawing in metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from shapely.geometry import LineString, box

from railwatch.site import SiteGrid

CRS = "EPSG:32652"
X0, Y0 = 500_000.0, 4_700_000.0

COLOURS = {
    "white": (0.86, 0.86, 0.84),
    "blue": (0.18, 0.28, 0.62),
    "red": (0.62, 0.16, 0.12),
    "rust": (0.46, 0.26, 0.16),
    "black": (0.11, 0.11, 0.12),
    "green": (0.20, 0.42, 0.22),
}

BALLAST = (0.47, 0.46, 0.44)

BODY_COLOURS = {**COLOURS, "ballast": BALLAST}
"""Colours a car may have: the palette of :func:`train` and a light grey the colour of
the ballast (told from empty track only by its rails and its shadow)."""


@dataclass(frozen=True)
class Car:
    track: int
    s0_m: float
    length_m: float
    type: str = "covered"
    colour: str = "rust"
    roof: tuple[tuple[float, float], ...] = ()
    """Dark roof equipment (fans, hatches, exhausts): (start m from ``s0_m``, length m)
    patches across the middle of the roof (|u| < 0.8 m), the body's sides running on."""

    @property
    def s1_m(self) -> float:
        return self.s0_m + self.length_m


@dataclass
class FixtureScene:
    grid: SiteGrid
    data: np.ndarray
    valid: np.ndarray
    bands: tuple[str, ...]
    lines: list[LineString]
    cars: list[Car] = field(default_factory=list)

    @property
    def gray(self) -> np.ndarray:
        return self.data.mean(axis=0).astype(np.float32)

    @property
    def aoi(self):
        minx, miny, maxx, maxy = self.grid.bounds
        return box(minx + 2, miny + 2, maxx - 2, maxy - 2)


def make_grid(width: int = 300, height: int = 120, res: float = 0.5) -> SiteGrid:
    return SiteGrid(CRS, Affine(res, 0, X0, 0, -res, Y0 + height * res), width, height)


def straight_line(grid: SiteGrid, y_m: float, *, x0_m: float = -5.0, x1_m: float | None = None):
    """Horizontal line at ``y_m`` metres above the grid's bottom edge, beyond the edges."""
    minx, miny, maxx, _ = grid.bounds
    x1 = (maxx - minx + 5.0) if x1_m is None else x1_m
    return LineString([(minx + x0_m, miny + y_m), (minx + x1, miny + y_m)])


def arc_line(grid: SiteGrid, *, radius_m: float, y_m: float, n: int = 120) -> LineString:
    """A curve: circular arc of ``radius_m`` starting horizontally at the left edge."""
    minx, miny, maxx, _ = grid.bounds
    cx, cy = minx - 5.0, miny + y_m + radius_m
    width = maxx - minx + 10.0
    a_end = np.arcsin(min(0.99, width / radius_m))
    a = np.linspace(0, a_end, n)
    return LineString(np.column_stack([cx + radius_m * np.sin(a), cy - radius_m * np.cos(a)]))


def _line_coords(line: LineString, px: np.ndarray, py: np.ndarray):
    """Signed across distance u (left positive) and along distance s of points to a line."""
    c = np.asarray(line.coords)
    best_d = np.full(px.shape, np.inf)
    u = np.zeros(px.shape)
    s = np.zeros(px.shape)
    acc = 0.0
    for (ax, ay), (bx, by) in zip(c[:-1], c[1:], strict=True):
        dx, dy = bx - ax, by - ay
        seg = np.hypot(dx, dy)
        tx, ty = dx / seg, dy / seg
        t = np.clip((px - ax) * tx + (py - ay) * ty, 0, seg)
        qx, qy = ax + t * tx, ay + t * ty
        d = np.hypot(px - qx, py - qy)
        better = d < best_d
        cross = tx * (py - ay) - ty * (px - ax)
        best_d = np.where(better, d, best_d)
        u = np.where(better, np.sign(cross) * d, u)
        s = np.where(better, acc + t, s)
        acc += seg
    return u, s


def render(
    grid: SiteGrid,
    lines: list[LineString],
    cars: list[Car],
    *,
    seed: int = 0,
    shadow_m: tuple[float, float] = (0.0, -1.3),
    offset_m: tuple[float, float] = (0.0, 0.0),
    noise: float = 0.012,
    snow: bool = False,
    supersample: int = 4,
    world_seed: int = 7,
    n_patches: int = 12,
    glint: float = 0.0,
) -> FixtureScene:
    """Render an RGB scene; ``offset_m`` shifts every feature (misregistration).

    ``glint`` is the brightness a tank's glossy barrel adds where it mirrors the sun to
    a nadir view: a narrow stripe along the barrel, on the sun side of its crest, where
    the surface normal is tilted half the sun's zenith angle towards the sun (the sun's
    elevation taken from ``shadow_m`` as thrown by a 4 m high car).
    """
    rng = np.random.default_rng(seed)
    res = grid.resolution_m
    ss = supersample
    h, w = grid.height * ss, grid.width * ss
    minx, miny, maxx, maxy = grid.bounds
    xs = minx + (np.arange(w) + 0.5) * res / ss - offset_m[0]
    ys = maxy - (np.arange(h) + 0.5) * res / ss - offset_m[1]
    px, py = np.meshgrid(xs, ys)
    ground = np.array([0.56, 0.53, 0.48]) if not snow else np.array([0.9, 0.91, 0.93])
    img = np.empty((3, h, w))
    # Ground variation and a few sheds/patches: part of the world, so they move with it.
    wave = 0.03 * np.sin(px / 23.0) * np.cos(py / 17.0)
    for b in range(3):
        img[b] = ground[b] + wave
    world = np.random.default_rng(world_seed)
    for _ in range(n_patches):
        cx = world.uniform(minx, maxx)
        cy = world.uniform(miny, maxy)
        hw, hh = world.uniform(1.5, 6.0, size=2)
        tone = world.uniform(-0.15, 0.15)
        patch = (np.abs(px - cx) < hw) & (np.abs(py - cy) < hh)
        img[:, patch] += tone
    ballast = np.array(BALLAST) if not snow else np.array([0.82, 0.83, 0.86])
    shadowed = np.zeros((h, w), bool)
    bodies = []
    for k, line in enumerate(lines):
        u, s = _line_coords(line, px, py)
        bed = np.abs(u) < 1.8
        for b in range(3):
            img[b][bed] = ballast[b]
        sleeper = (np.abs(u) < 1.3) & (np.mod(s, 0.6) < 0.25)
        img[:, sleeper] = img[:, sleeper] * 0.8
        rail = (np.abs(np.abs(u) - 0.76) < 0.08) & (np.abs(u) < 1.0)
        img[:, rail] = 0.27
        for car in (c for c in cars if c.track == k):
            body = (np.abs(u) < 1.6) & (s >= car.s0_m + 0.3) & (s <= car.s1_m - 0.3)
            # Shadow: the body footprint moved by the sun offset.
            su, ss_ = _line_coords(line, px - shadow_m[0], py - shadow_m[1])
            sh = (np.abs(su) < 1.6) & (ss_ >= car.s0_m + 0.3) & (ss_ <= car.s1_m - 0.3)
            shadowed |= sh
            # The sun lies opposite the shadow: across the track, towards where the
            # shadow's offset moves a point's across coordinate.
            bodies.append((car, body, u, np.sign(su - u), s))
    img[:, shadowed] *= 0.45
    zenith = np.arctan2(float(np.hypot(*shadow_m)), 4.0)
    glint_u = 1.6 * np.sin(zenith / 2)
    for car, body, u, sun_side, s in bodies:
        col = np.array(BODY_COLOURS[car.colour])
        if car.type == "tank":
            shade = 0.55 + 0.6 * np.cos(np.clip(u / 1.6, -1, 1) * np.pi / 2)
            stripe = glint * np.exp(-0.5 * ((u - sun_side * glint_u) / 0.15) ** 2)
            for b in range(3):
                img[b][body] = np.clip(col[b] * shade[body] + 0.08 + stripe[body], 0, 1)
        elif car.type == "open":
            rim = body & (np.abs(np.abs(u) - 1.45) < 0.15)
            inner = body & ~rim
            for b in range(3):
                img[b][inner] = 0.09
                img[b][rim] = col[b]
        elif car.type == "flat":
            for b in range(3):
                img[b][body] = 0.5 * col[b] + 0.2
        else:
            for b in range(3):
                img[b][body] = col[b]
        for a0, length in car.roof:
            kit = body & (np.abs(u) < 0.8) & (s >= car.s0_m + a0) & (s <= car.s0_m + a0 + length)
            img[:, kit] = 0.06
        if snow:
            img[:, body] = 0.55 * img[:, body] + 0.4
    img = img.reshape(3, grid.height, ss, grid.width, ss).mean(axis=(2, 4))
    img = img + rng.normal(0, noise, img.shape)
    data = np.clip(img, 0, 1).astype(np.float32)
    valid = np.ones(grid.shape, bool)
    return FixtureScene(grid, data, valid, ("red", "green", "blue"), list(lines), list(cars))


def train(
    track: int,
    start_m: float,
    lengths: list[float],
    *,
    gap_m: float = 1.0,
    types: list[str] | None = None,
    colours: list[str] | None = None,
) -> list[Car]:
    """Consecutive cars; each length is over couplers, bodies separated by ``gap_m``."""
    out = []
    s = start_m
    palette = list(COLOURS)
    for i, length in enumerate(lengths):
        t = types[i] if types else "covered"
        c = colours[i] if colours else palette[i % len(palette)]
        # Length over couplers includes half a gap at each end.
        out.append(Car(track, s, length - gap_m + 0.6, t, c))
        s += length
    return out


def add_cloud(scene: FixtureScene, *, x_frac: tuple[float, float] = (0.0, 1.0), seed: int = 1):
    """Thick, smooth, bright cloud over a band of columns."""
    rng = np.random.default_rng(seed)
    h, w = scene.grid.shape
    c0, c1 = int(x_frac[0] * w), int(x_frac[1] * w)
    alpha = np.zeros((h, w))
    alpha[:, c0:c1] = 0.97
    from scipy import ndimage as ndi

    alpha = ndi.gaussian_filter(alpha, 3)
    cloud = 0.9 + 0.02 * ndi.gaussian_filter(rng.normal(size=(h, w)), 6)
    data = scene.data * (1 - alpha) + cloud * alpha
    scene.data = data.astype(np.float32)
    return scene


SHED_TRACKS_Y = (20.0, 25.3)
"""Two tracks; a 45 m shed stands beside the second (:func:`shed_date`)."""
SHED_X = (60.0, 105.0)
SHED_EAVE_Y = 27.0  # roof edge 1.7 m from T2's centre line: over its shoulder
SHED_RIDGE_Y = 34.0
SHED_ROOF = np.array([0.30, 0.40, 0.62])


def shed_date(
    k: int,
    shed_cars: list[Car],
    *,
    paints: list[str],
    wall: np.ndarray | None,
    seed: int,
    texture_seed: int,
) -> tuple[FixtureScene, list[LineString], list[Car]]:
    """Date ``k`` of a two-track yard with a shed beside T2 (400 x 90 px at 0.5 m).

    A short train of ``paints`` on T1 that moves from date to date, ``shed_cars`` on T2,
    the shed's roof over T2's shoulder and, with ``wall`` (a colour), its wall face leaning
    from the eave over the shoulder and past T2's centre line; the scene's brightness
    varies a little by date (``seed`` renders the yard, ``texture_seed`` the shed's 2 %
    texture). Returns the scene, the two centre lines and all the cars.
    """
    g = make_grid(400, 90)
    lines = [straight_line(g, y) for y in SHED_TRACKS_Y]
    n = 2 + k % 3
    cars = train(0, 8.0 + 9.0 * k, [13.92] * n, colours=paints[:n]) + list(shed_cars)
    sc = render(g, lines, cars, seed=seed, shadow_m=(0.0, -1.3))
    minx, miny, maxx, maxy = g.bounds
    xs = minx + (np.arange(g.width) + 0.5) * g.resolution_m - minx
    ys = maxy - (np.arange(g.height) + 0.5) * g.resolution_m - miny
    px, py = np.meshgrid(xs, ys)
    along = (px >= SHED_X[0]) & (px <= SHED_X[1])
    tone = 1 + 0.02 * np.random.default_rng(texture_seed).standard_normal(px.shape)
    top = along & (py >= SHED_EAVE_Y) & (py <= SHED_RIDGE_Y)
    sc.data[:, top] = SHED_ROOF[:, None] * tone[top]
    if wall is not None:
        face = along & (py >= SHED_TRACKS_Y[1] - 0.6) & (py < SHED_EAVE_Y + 0.8)
        sc.data[:, face] = np.asarray(wall)[:, None] * tone[face]
    sc.data *= np.float32(0.9 + 0.03 * (k % 4))
    return sc, lines, cars


def count_archive(scenes: list[tuple[FixtureScene, list[LineString], list[Car]]]):
    """Learn the archive of ``scenes`` (as :func:`shed_date` returns them) and analyse each.

    Returns the learned background, and per date the counted vehicles on each track and
    the true cars on it (T1, T2, ...). Every date must come out ``ok``.
    """
    from railwatch.detect import analyse_scene, learn_background
    from railwatch.site import Site
    from railwatch.tracks import tracks_from_lines

    first, lines, _ = scenes[0]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    bg = learn_background([(s.data, s.bands, s.valid) for s, _, _ in scenes], first.grid, tracks)
    site = Site(name="test", aoi=first.aoi)
    got, want = [], []
    for sc, _, cars in scenes:
        a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, background=bg)
        assert a.quality.status == "ok"
        got.append([sum(v.counted for v in a.vehicles if v.track_id == t.track_id) for t in tracks])
        want.append([sum(c.track == i for c in cars) for i in range(len(tracks))])
    return bg, got, want


def cut_nodata(scene: FixtureScene, *, keep_cols: int) -> FixtureScene:
    """Mark columns from ``keep_cols`` on as unobserved (zero data, invalid)."""
    scene.valid[:, keep_cols:] = False
    scene.data[:, :, keep_cols:] = 0.0
    return scene


def darken(
    scene: FixtureScene, x_m: tuple[float, float], y_m: tuple[float, float], factor: float
) -> FixtureScene:
    """Scale the light in a box (metres from the grid's bottom-left corner): a shadow."""
    res = scene.grid.resolution_m
    h = scene.grid.height
    c0, c1 = int(round(x_m[0] / res)), int(round(x_m[1] / res))
    r0, r1 = h - int(round(y_m[1] / res)), h - int(round(y_m[0] / res))
    scene.data[:, r0:r1, c0:c1] *= factor
    return scene


def display_encode(scene: FixtureScene, *, gamma: float = 1.6) -> FixtureScene:
    """Encode the (linear) scene for display, as 8-bit RGB products are delivered."""
    scene.data = (np.clip(scene.data, 0.0, 1.0) ** (1.0 / gamma)).astype(np.float32)
    return scene
