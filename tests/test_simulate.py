import csv
import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Geod, Transformer
from shapely.geometry import LineString, shape

from railwatch.imagery import datetime_from_name, datetime_from_tags
from railwatch.simulate import (
    DEFAULT_DATES,
    VEHICLE_SPECS,
    builtin_aoi,
    place_vehicles,
    plan_acquisitions,
    simulate_yard,
    sun_position,
    traffic_level,
    yard_layout,
)
from railwatch.site import load_site, to_crs

REPO = Path(__file__).resolve().parents[1]
UTM = "EPSG:32652"


def small_aoi(length_m: float = 150.0, width_m: float = 32.0):
    """A north-up rectangle near Tumangang, in WGS84."""
    from shapely.geometry import box

    e, n = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(130.6112, 42.4262)
    return to_crs(
        box(e - width_m / 2, n - length_m / 2, e + width_m / 2, n + length_m / 2), UTM, "EPSG:4326"
    )


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    result = simulate_yard(
        out, rng=np.random.default_rng(5), dates=4, aoi=small_aoi(), margin_m=10.0
    )
    return result


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def file_datetime(path: Path) -> dt.datetime | None:
    with rasterio.open(path) as src:
        return datetime_from_tags(src.tags()) or datetime_from_name(path.name)


# ---------------------------------------------------------------- pure parts


def test_sun_is_low_in_winter_and_high_in_summer():
    az_w, el_w = sun_position(dt.datetime(2023, 1, 14, 2, 0, tzinfo=dt.UTC), 130.61, 42.42)
    az_s, el_s = sun_position(dt.datetime(2024, 6, 17, 2, 0, tzinfo=dt.UTC), 130.61, 42.42)
    assert 18 < el_w < 26 and 62 < el_s < 72
    assert 130 < az_w < 175 and 110 < az_s < 170  # late morning: sun in the south-east


def test_traffic_follows_the_public_story():
    assert traffic_level(dt.date(2019, 6, 1)) <= 20
    assert traffic_level(dt.date(2021, 6, 1)) < 3
    assert round(traffic_level(dt.date(2023, 10, 5))) == 73
    assert traffic_level(dt.date(2024, 6, 17)) > 150


def test_default_plan_covers_the_cases():
    layout = yard_layout(builtin_aoi())
    plans = plan_acquisitions(np.random.default_rng(0), capacity=layout.capacity)
    assert len(plans) == DEFAULT_DATES
    assert {p.when.year for p in plans} == set(range(2019, 2025))
    assert all(1 <= p.when.hour <= 2 for p in plans)
    assert any(p.n_tiles == 2 for p in plans)
    assert any(p.crs == "EPSG:4326" for p in plans)
    assert any(p.product == "ms11" for p in plans)
    assert any(p.swath == "partial" for p in plans)
    assert any(p.cloud == "overcast" for p in plans)
    assert any(p.snow for p in plans)
    assert {p.date_carrier for p in plans} == {
        "compact",
        "iso_name",
        "tiff_datetime",
        "acquisition_datetime",
    }
    assert sum(p.gsd_m == 0.5 for p in plans) >= 12
    assert max(p.n_vehicles for p in plans if p.when.year == 2019) <= 20
    assert max(p.n_vehicles for p in plans if p.when.year in (2020, 2021)) <= 5
    assert max(p.n_vehicles for p in plans if p.when.year == 2024) > 150


def test_builtin_yard_matches_site_file_and_has_a_curve():
    site = load_site(REPO / "configs" / "tumangang.yaml")
    assert site.aoi.equals_exact(builtin_aoi(), 1e-9)
    layout = yard_layout(site.aoi)
    # The sample site file's digitised centre lines are the rendered yard's.
    from railwatch.site import to_crs

    digitised = {k: to_crs(ln, "EPSG:4326", "EPSG:32652") for k, ln in site.tracks}
    assert set(digitised) == {t.track_id for t in layout.tracks}
    for t in layout.tracks:
        assert digitised[t.track_id].hausdorff_distance(t.line) < 0.05  # metres
    yard = [t for t in layout.tracks if t.kind in ("yard", "through")]
    assert 6 <= len(yard) <= 9
    assert all(layout.aoi.buffer(0.01).contains(t.line) for t in layout.tracks)
    spur = next(t for t in layout.tracks if t.kind == "spur")
    chord = LineString([spur.line.coords[0], spur.line.coords[-1]]).length
    assert spur.line.length - chord > 0.05  # curved
    # neighbouring yard tracks 5.3 m apart
    d = sorted(yard[0].line.distance(t.line) for t in yard[1:])
    assert d[0] == pytest.approx(5.3, abs=0.01)
    assert layout.capacity > 200


def test_vehicle_count_is_exact_when_the_yard_has_room():
    layout = yard_layout(builtin_aoi())
    for n, seed in ((0, 1), (1, 2), (20, 3), (73, 4)):
        cars = place_vehicles(layout, n, np.random.default_rng(seed), day=dt.date(2019, 6, 1))
        assert len(cars) == n


def test_vehicles_lie_on_their_tracks_with_small_gaps():
    layout = yard_layout(builtin_aoi())
    cars = place_vehicles(layout, 180, np.random.default_rng(3), day=dt.date(2024, 6, 1))
    assert len(cars) >= 170
    lines = {t.track_id: t.line for t in layout.tracks}
    assert {c.track_id for c in cars} >= {"S1"} or len({c.track_id for c in cars}) >= 8
    for c in cars:
        line = lines[c.track_id]
        assert line.buffer(c.width_m / 2 + 0.05).contains(c.polygon)
        assert c.polygon.area == pytest.approx(c.length_m * c.width_m, rel=0.02)
    by_track: dict[str, list] = {}
    for c in cars:
        by_track.setdefault(c.track_id, []).append(c)
    gaps = []
    for tid, cs in by_track.items():
        pos = sorted((lines[tid].project(shape(c.polygon).centroid), c.length_m) for c in cs)
        for (p0, l0), (p1, l1) in zip(pos, pos[1:], strict=False):
            gaps.append(p1 - p0 - (l0 + l1) / 2)
    gaps = np.array(gaps)
    assert gaps.min() > 0.4  # never overlapping
    assert np.mean((gaps >= 0.5) & (gaps <= 1.5)) > 0.7  # mostly coupled rakes
    assert (gaps > 2.4).any()  # separate rakes
    types = {c.type for c in cars}
    assert types >= {"tank", "open"}
    for c in cars:
        spec = VEHICLE_SPECS[c.type]
        if c.type in ("tank", "open", "covered"):
            assert c.length_m == pytest.approx(spec["length_m"], abs=0.06)


# ---------------------------------------------------------------- rendered files


def test_files_are_georeferenced_as_declared(small_run):
    geod = Geod(ellps="WGS84")
    for acq in small_run.acquisitions:
        for name in acq.files:
            with rasterio.open(small_run.out_dir / name) as src:
                assert src.crs.to_epsg() == int(acq.crs.split(":")[1])
                assert src.nodata == 0
                if acq.crs == UTM:
                    assert src.res == pytest.approx((acq.gsd_m, acq.gsd_m))
                else:
                    lon, lat = src.xy(src.height // 2, src.width // 2)
                    _, _, dx = geod.inv(lon, lat, lon + src.res[0], lat)
                    _, _, dy = geod.inv(lon, lat, lon, lat + src.res[1])
                    assert dx == pytest.approx(acq.gsd_m, rel=0.01)
                    assert dy == pytest.approx(acq.gsd_m, rel=0.01)
                names = [ci.name for ci in src.colorinterp]
                assert names[:3] == ["red", "green", "blue"]
                # the image covers the AOI's bounds
                aoi = to_crs(small_aoi(), "EPSG:4326", src.crs.to_string())
                left, _, right, _ = src.bounds
                assert left <= aoi.bounds[0] and right >= aoi.bounds[2]
    assert {a.crs for a in small_run.acquisitions} == {UTM, "EPSG:4326"}


def test_eleven_bit_product(small_run):
    ms = [a for a in small_run.acquisitions if a.product == "ms11"]
    assert ms
    with rasterio.open(small_run.out_dir / ms[0].files[0]) as src:
        data = src.read()
        assert src.count == 4 and data.dtype == np.uint16
        assert [ci.name for ci in src.colorinterp] == ["red", "green", "blue", "nir"]
    assert data.max() <= 2047
    assert data.max() > 255  # really more than 8 bits


def test_two_tiles_share_a_datetime_and_overlap(small_run):
    two = [a for a in small_run.acquisitions if len(a.files) == 2]
    assert len(two) == 1
    paths = [small_run.out_dir / f for f in two[0].files]
    times = {file_datetime(p) for p in paths}
    assert len(times) == 1 and None not in times
    with rasterio.open(paths[0]) as a, rasterio.open(paths[1]) as b:
        assert a.crs == b.crs and a.res == b.res
        assert a.bounds.bottom <= b.bounds.top  # overlapping or abutting


def test_acquisition_time_carried_by_name_or_metadata(small_run):
    for acq in small_run.acquisitions:
        for name in acq.files:
            got = file_datetime(small_run.out_dir / name)
            assert got is not None
            if acq.date_carrier == "iso_name":
                assert got.date() == acq.date
            else:
                assert got == acq.datetime
            assert dt.time(1, 30) <= acq.datetime.time() <= dt.time(2, 30)


def test_nodata_marks_the_swath_edge_only(small_run):
    for acq in small_run.acquisitions:
        if len(acq.files) != 1:
            continue
        with rasterio.open(small_run.out_dir / acq.files[0]) as src:
            data = src.read()
        empty = (data == 0).all(axis=0)
        assert ((data == 0).any(axis=0) == empty).all()  # zero only where every band is
        if acq.status == "partial" and acq.crs == UTM:
            assert 0.05 < empty.mean() < 0.95
        if acq.status == "ok" and acq.crs == UTM and acq.product == "ms11":
            assert not empty.any()


def test_truth_cars_lie_on_truth_tracks(small_run):
    truth = small_run.truth_dir
    tracks = json.loads((truth / "tracks.geojson").read_text())
    lines = {
        f["properties"]["track_id"]: to_crs(shape(f["geometry"]), "EPSG:4326", UTM)
        for f in tracks["features"]
    }
    cars = json.loads((truth / "cars.geojson").read_text())["features"]
    assert cars
    for f in cars:
        p = f["properties"]
        assert set(p) >= {"date", "datetime", "type", "track_id", "length_m"}
        poly = to_crs(shape(f["geometry"]), "EPSG:4326", UTM)
        line = lines[p["track_id"]]
        assert line.buffer(1.65).contains(poly)
        assert line.distance(poly.centroid) < 0.05
        assert poly.area == pytest.approx(
            p["length_m"] * VEHICLE_SPECS[p["type"]]["width_m"], rel=0.02
        )


def test_counts_match_truth_cars(small_run):
    rows = read_csv(small_run.truth_dir / "counts.csv")
    cars = json.loads((small_run.truth_dir / "cars.geojson").read_text())["features"]
    assert [r["date"] for r in rows] == [a.date.isoformat() for a in small_run.acquisitions]
    for row in rows:
        mine = [f for f in cars if f["properties"]["date"] == row["date"]]
        observed = [f for f in mine if f["properties"]["observed"]]
        cov = float(row["coverage"])
        seen = cov * (1.0 - float(row["cloud"]))  # cloud hides track, as in quality.py
        if row["status"] == "ok":
            assert int(row["railcars"]) == len(mine) == len(observed)
            assert seen >= 0.98
        elif row["status"] == "partial":
            assert int(row["railcars"]) == len(observed) <= len(mine)
            assert cov >= 0.02 and seen < 0.98
            # Cars under cloud are not observed, those in the clear are.
            assert not any(f["properties"]["under_cloud"] for f in observed)
        else:
            assert row["railcars"] == ""
        if row["railcars"]:
            by_type = sum(int(row[t]) for t in VEHICLE_SPECS)
            assert by_type == int(row["railcars"])
    scenes = read_csv(small_run.truth_dir / "scenes.csv")
    assert len(scenes) == len(rows)
    for s in scenes:
        assert math.hypot(float(s["shift_x_m"]), float(s["shift_y_m"])) <= 10.0
        assert s["product"] in ("rgb8", "ms11")
        for name in s["files"].split(";"):
            assert (small_run.out_dir / name).is_file()


def test_image_is_shifted_not_the_truth():
    """A ground feature at true P appears in the file at P + shift (truth stays at P)."""
    from affine import Affine

    from railwatch.simulate import AcquisitionPlan, _Canvas, _image, _Product

    canvas = _Canvas(x0=1000.0, y0=2000.0, width=400, height=400)  # 100 m at 0.25 m
    scene = np.full((4, 400, 400), 0.2, np.float32)
    # a bright 2 m square centred on ground point (1050, 1950)
    scene[:, 196:204, 196:204] = 0.9
    prod = _Product(UTM, Affine(0.5, 0, 1010.0, 0, -0.5, 1990.0), 160, 160)
    plan = AcquisitionPlan(
        when=dt.datetime(2023, 6, 1, 2, tzinfo=dt.UTC),
        gsd_m=0.5,
        crs=UTM,
        product="ms11",
        compression="deflate",
        n_tiles=1,
        swath="full",
        cloud="clear",
        date_carrier="compact",
        haze=0.0,
        n_vehicles=0,
    )
    shift = (3.0, -4.5)
    dn = _image(
        scene,
        canvas,
        prod,
        UTM,
        plan,
        shift,
        lambda x, y: np.ones(np.shape(x), bool),
        np.random.default_rng(0),
    )
    band = dn[0].astype(float)
    rows, cols = np.nonzero(band > band.max() * 0.8)
    x, y = prod.transform @ (cols.mean() + 0.5, rows.mean() + 0.5)
    assert x == pytest.approx(1050.0 + shift[0], abs=0.3)
    assert y == pytest.approx(1950.0 + shift[1], abs=0.3)
    assert dn.dtype == np.uint16 and dn.max() <= 2047 and dn.min() >= 1


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    kw = dict(dates=2, aoi=small_aoi(100.0, 24.0), margin_m=5.0)
    a = simulate_yard(tmp_path / "a", rng=np.random.default_rng(7), **kw)
    b = simulate_yard(tmp_path / "b", rng=np.random.default_rng(7), **kw)
    c = simulate_yard(tmp_path / "c", rng=np.random.default_rng(8), **kw)
    names_a = sorted(p.name for p in a.files)
    assert names_a == sorted(p.name for p in b.files)
    for name in names_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for t in ("cars.geojson", "counts.csv", "scenes.csv", "tracks.geojson"):
        assert (a.truth_dir / t).read_bytes() == (b.truth_dir / t).read_bytes()
    with rasterio.open(a.files[0]) as fa, rasterio.open(c.files[0]) as fc:
        differs = fa.shape != fc.shape or not np.array_equal(fa.read(), fc.read())
    assert differs


def test_aoi_too_small_is_a_config_error():
    from railwatch.errors import SiteConfigError

    with pytest.raises(SiteConfigError, match="aoi"):
        yard_layout(small_aoi(30.0, 8.0))


def test_catenary_portals_add_masts_and_shadows_but_change_no_truth(tmp_path):
    from railwatch.simulate import catenary

    kw = dict(dates=2, aoi=small_aoi(260.0, 32.0), margin_m=5.0)
    plain = simulate_yard(tmp_path / "plain", rng=np.random.default_rng(4), **kw)
    wired = simulate_yard(
        tmp_path / "wired", rng=np.random.default_rng(4), catenary_portals=True, **kw
    )
    portals = catenary(wired.layout)
    masts = [g for g, _, elevated in portals if not elevated]
    beams = [g for g, _, elevated in portals if elevated]
    assert len(beams) >= 2 and len(masts) == 2 * len(beams)
    # Beams span every main track; masts stand clear of the vehicles.
    main = [t for t in wired.layout.tracks if t.kind in ("yard", "through")]
    assert all(b.intersects(t.line) for b in beams for t in main)
    assert min(m.distance(t.line) for m in masts for t in main) > 2.0
    for name in ("cars.geojson", "counts.csv", "tracks.geojson"):
        assert (plain.truth_dir / name).read_bytes() == (wired.truth_dir / name).read_bytes()
    for acq in plain.acquisitions:
        for name in acq.files:
            with rasterio.open(plain.out_dir / name) as a, rasterio.open(wired.out_dir / name) as b:
                x, y = a.read(1).astype(float), b.read(1).astype(float)
            changed = np.abs(x - y) > 0.02 * x.max()
            # Thin structures and their shadows, not a repaint; mostly darker (the steel
            # is lighter than rails and black cars; JPEG ringing goes both ways).
            assert 0.001 < changed.mean() < 0.1
            assert (y < x)[changed].mean() > 0.7
