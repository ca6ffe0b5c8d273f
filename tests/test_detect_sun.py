"""The sun's direction at acquisition names the side a track's shadows fall to.

The detector learns that side from the scene's clear bodies, which goes wrong where the
shadows are clearer than the bodies casting them. Where the acquisition time is known
the side follows from the sun's azimuth instead (pipeline: at the AOI's centroid); a
product that carries only a date gives no time of day, and the side is learned as before.
"""

import datetime as dt

import numpy as np
import pytest
from shapely.geometry import box

from railwatch.detect import SUN_ACROSS_MIN, _shadow_direction, _sun_across
from railwatch.imagery import Acquisition, has_time_of_day, inspect_file
from railwatch.pipeline import _sun_at
from railwatch.site import DetectionConfig, Site
from railwatch.sun import sun_position
from rasters import ground_pattern, utm_transform, write_geotiff
from test_detect_snow_low_sun import DARK
from test_detect_snow_low_sun import _snowy_yard as _snowy_yard_of

# The snowy low-sun yard of test_detect_snow_low_sun, now with the sun known.


def _snowy_yard(**sun):
    """The snowy yard with its shadows 3 m to the south (grid y north): sun due north."""
    return _snowy_yard_of(DARK, shadow_m=(0.0, -3.0), **sun)


def _t1(a):
    return len([v for v in a.vehicles if v.track_id == "T1" and v.counted])


def test_shadow_direction_points_away_from_the_sun():
    # Sun in the south-east (azimuth 146 deg): shadows fall to the north-west.
    d = _shadow_direction((146.0, 34.0))
    assert d[0] == pytest.approx(-np.sin(np.radians(146.0)))
    assert d[1] == pytest.approx(-np.cos(np.radians(146.0)))
    assert d[0] < 0 < d[1]
    assert _shadow_direction((146.0, -2.0)) is None  # night: no sun, no shadow
    assert _shadow_direction(None) is None


def test_sun_along_the_track_falls_back_to_learning():
    normals = np.tile([0.0, 1.0], (100, 1))  # east-west tracks, left normal north
    clear = np.ones(100, bool)
    # Sun due south: shadows north, straight across (to the left).
    assert np.allclose(_sun_across(_shadow_direction((180.0, 30.0)), normals, clear), 1.0)
    # Sun due east: shadows run along the tracks, the side is learned.
    assert _sun_across(_shadow_direction((90.0, 30.0)), normals, clear) is None
    # Just past the limit the sun names the side again.
    az = 90.0 + np.degrees(np.arcsin(SUN_ACROSS_MIN)) + 1.0
    assert _sun_across(_shadow_direction((az, 30.0)), normals, clear) is not None


def test_known_sun_counts_grey_cars_by_their_shadow():
    a = _snowy_yard(sun_azimuth_deg=0.0, sun_elevation_deg=25.0)
    assert a.quality.status == "ok"
    assert _t1(a) == 5
    assert a.railcars == 10


def test_sun_contradicting_the_scene_gives_no_cast_shadow_evidence():
    # Given a sun in the south, the clear bodies' dark shoulders lie on its sun side:
    # they cast no shadow where it would throw one, and the shoulder proves nothing.
    opposite = _snowy_yard(sun_azimuth_deg=180.0, sun_elevation_deg=25.0)
    assert _t1(opposite) < 5
    # The train on T3 is found by its colour either way.
    assert len([v for v in opposite.vehicles if v.track_id == "T3" and v.counted]) == 5
    # A sun along the tracks leaves the side to the scene, which learns it.
    along = _snowy_yard(sun_azimuth_deg=90.0, sun_elevation_deg=25.0)
    assert along.railcars == 10


def test_time_of_day_known_only_when_the_source_gives_it(tmp_path):
    assert has_time_of_day("20230302_021500_ssc1_visual.tif")
    assert has_time_of_day("2023:03:02 02:15:00")
    assert has_time_of_day("2023-03-02T02:15:00Z")
    assert not has_time_of_day("TMG_2023-03-02_visual.tif")
    assert not has_time_of_day("20230302")
    img = ground_pattern(20, 20)
    dated = write_geotiff(tmp_path / "TMG_2023-03-02_visual.tif", img, transform=utm_transform())
    timed = write_geotiff(tmp_path / "20230302_021500_a.tif", img, transform=utm_transform())
    tagged = write_geotiff(
        tmp_path / "undated.tif",
        img,
        transform=utm_transform(),
        tags={"TIFFTAG_DATETIME": "2023:03:02 02:15:00"},
    )
    day_only = write_geotiff(
        tmp_path / "undated_day.tif",
        img,
        transform=utm_transform(),
        tags={"ACQUISITION_DATE": "20230302"},
    )
    assert not inspect_file(dated).time_known
    assert inspect_file(timed).time_known
    assert inspect_file(tagged).time_known
    assert not inspect_file(day_only).time_known


def test_sun_at_the_aoi_only_with_a_time_of_day(tmp_path):
    img = ground_pattern(20, 20)
    site = Site(name="t", aoi=box(130.60, 42.41, 130.62, 42.43))
    f = inspect_file(
        write_geotiff(tmp_path / "20230302_021500_a.tif", img, transform=utm_transform())
    )
    sun = _sun_at(Acquisition(f.datetime, (f,)), site)
    # Tumangang, 2 March, 11:15 local: the sun stands low in the south-south-east.
    assert 140.0 < sun["sun_azimuth_deg"] < 165.0
    assert 30.0 < sun["sun_elevation_deg"] < 42.0
    g = inspect_file(
        write_geotiff(tmp_path / "TMG_2023-03-02_b.tif", img, transform=utm_transform())
    )
    assert g.datetime == dt.datetime(2023, 3, 2, tzinfo=dt.UTC)
    assert _sun_at(Acquisition(g.datetime, (g,)), site) == {}


def test_a_date_only_product_takes_the_sun_of_the_sites_usual_overpass(tmp_path):
    img = ground_pattern(20, 20)
    aoi = box(130.60, 42.41, 130.62, 42.43)
    lon, lat = aoi.centroid.coords[0]
    site = Site(name="t", aoi=aoi, detection=DetectionConfig(overpass_local_time="10:15-11:15"))
    day = inspect_file(
        write_geotiff(tmp_path / "TMG_2023-03-02_b.tif", img, transform=utm_transform())
    )
    sun = _sun_at(Acquisition(day.datetime, (day,)), site)
    # 10:45 local mean solar time is 10:45 - lon/15 h UTC: 02:02 on 2 March.
    when = dt.datetime(2023, 3, 2, tzinfo=dt.UTC) + dt.timedelta(hours=10.75 - lon / 15)
    assert (when.hour, when.minute) == (2, 2)
    assert sun == pytest.approx(
        dict(
            zip(("sun_azimuth_deg", "sun_elevation_deg"), sun_position(when, lon, lat), strict=True)
        )
    )
    assert 145.0 < sun["sun_azimuth_deg"] < 160.0
    # A product that gives its time uses it, whatever the usual overpass.
    timed = inspect_file(
        write_geotiff(tmp_path / "20230302_060000_a.tif", img, transform=utm_transform())
    )
    assert _sun_at(Acquisition(timed.datetime, (timed,)), site)["sun_azimuth_deg"] > 200.0
    # Near midsummer noon the sun sweeps 27 deg of azimuth in that hour: no side is named.
    june = inspect_file(
        write_geotiff(tmp_path / "TMG_2019-06-21_c.tif", img, transform=utm_transform())
    )
    assert _sun_at(Acquisition(june.datetime, (june,)), site) == {}
