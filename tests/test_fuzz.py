"""Property-based fuzzing (issue 6): date parsing, site files and STAC documents.

Whatever the input, the only exceptions allowed are the documented ones
(:class:`SiteConfigError` for site files); date parsers return None or an aware UTC
datetime, and known formats round-trip exactly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import mapping

from railwatch.errors import SiteConfigError
from railwatch.imagery import datetime_from_name, datetime_from_tags, discover, parse_timestamp
from railwatch.site import Site, load_site, to_crs
from reliability import aoi_geom

# RAILWATCH_FUZZ_EXAMPLES=5000 for a deeper run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("RAILWATCH_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _is_utc(d):
    return d.tzinfo is not None and d.utcoffset() == dt.timedelta(0)


# ----------------------------------------------------------------------------- dates


@FUZZ
@given(st.text(max_size=80))
def test_name_parser_never_raises(name):
    d = datetime_from_name(name)
    assert d is None or (_is_utc(d) and 1900 <= d.year <= 2099)


@FUZZ
@given(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2099, 12, 31)),
    st.sampled_from(["%Y%m%d", "%Y-%m-%d", "%Y_%m_%d", "%Y%m%dT%H%M%S", "%Y-%m-%dT%H%M%S"]),
    st.text(alphabet="abcXYZ_-. ", max_size=12),
    st.text(alphabet="abcXYZ_-. ", max_size=12),
)
def test_dates_in_names_round_trip(when, fmt, prefix, suffix):
    name = f"{prefix}{when:{fmt}}{suffix}.tif"
    d = datetime_from_name(name)
    assert d is not None, name
    assert d.date() == when.date()
    if "%H" in fmt:
        assert d.replace(tzinfo=None) == when.replace(microsecond=0)


@FUZZ
@given(st.text(max_size=60))
def test_timestamp_parser_never_raises(text):
    d = parse_timestamp(text)
    assert d is None or (_is_utc(d) and 1949 <= d.year <= 2201)


@FUZZ
@given(st.dictionaries(st.text(max_size=30), st.text(max_size=40), max_size=6))
def test_tag_parser_never_raises(tags):
    d = datetime_from_tags(tags)
    assert d is None or _is_utc(d)


@FUZZ
@given(
    st.datetimes(min_value=dt.datetime(1951, 1, 1), max_value=dt.datetime(2199, 12, 31)),
    st.sampled_from(["%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
    st.sampled_from(["TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "acquisition_date"]),
)
def test_tag_dates_round_trip(when, fmt, key):
    d = datetime_from_tags({key: when.strftime(fmt)})
    assert d == when.replace(microsecond=0, tzinfo=dt.UTC)


@FUZZ
@given(
    st.datetimes(
        min_value=dt.datetime(1960, 1, 1),
        max_value=dt.datetime(2190, 1, 1),
        timezones=st.sampled_from(
            [dt.timezone(dt.timedelta(hours=h)) for h in (-11, -5, 0, 3, 9, 14)]
        ),
    )
)
def test_iso_offsets_become_utc(when):
    d = parse_timestamp(when.replace(microsecond=0).isoformat())
    assert d == when.replace(microsecond=0) and _is_utc(d)


# ----------------------------------------------------------------------------- site files

KEYS = [
    "name", "aoi", "tracks", "crs", "resolution_m", "margin_m", "vehicles", "detection",
    "quality", "baseline", "events", "description", "lengths_m", "tank", "gap_m",
    "band_mapping", "red", "min_confidence", "max_cloud", "model", "value", "towns",
    "population", "date", "label", "reference_start", "statistic", "type", "coordinates",
    "features", "geometry", "properties",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(),
    st.sampled_from(["EPSG:32652", "EPSG:4326", "constant", "p90", "2023-09-13", "aoi.geojson"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
AOI = mapping(to_crs(aoi_geom(), "EPSG:32652", "EPSG:4326"))


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_site")


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return load_site(path)
        except SiteConfigError as exc:
            assert str(path) in str(exc)  # every error names the file
            return exc


@FUZZ
@given(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    st.sampled_from(["valid", "random", "absent"]),
)
def test_random_site_structures_load_or_raise_site_config_error(site_dir, body, aoi_kind):
    if aoi_kind == "valid":
        body = {**body, "aoi": AOI}
    elif aoi_kind == "absent":
        body.pop("aoi", None)
    path = site_dir / "site.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    got = _load(path)
    assert isinstance(got, Site | SiteConfigError)
    if isinstance(got, Site):
        json.dumps(got.to_dict())  # a loaded site can always be recorded in run.json


@FUZZ
@given(st.text(max_size=200))
def test_random_text_site_files(site_dir, text):
    path = site_dir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    assert isinstance(_load(path), Site | SiteConfigError)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_site_files(site_dir, data):
    path = site_dir / "bytes.yaml"
    path.write_bytes(data)
    assert isinstance(_load(path), Site | SiteConfigError)


@FUZZ
@given(
    st.sampled_from(
        [
            "aoi: {a}\nevents: [{{date: {v}}}]\n",
            "aoi: {a}\nbaseline: {{model: reference, reference_start: {v}, reference_end: {v}}}\n",
            "aoi: {a}\nresolution_m: {v}\n",
            "aoi: {a}\nquality: {{max_cloud: {v}}}\n",
            "aoi: {a}\ndetection: {{band_mapping: {{red: {v}}}}}\n",
        ]
    ),
    st.one_of(
        st.text(alphabet="0123456789-:.TZ e+!", min_size=1, max_size=25),
        st.sampled_from(["!!int x", "!!float y", "2023-02-30", "1e999", "0x1F", "!!binary ab"]),
    ),
)
def test_tricky_yaml_scalars(site_dir, template, value):
    assume("\n" not in value)
    path = site_dir / "scalar.yaml"
    path.write_text(template.format(a=json.dumps(AOI), v=value))
    assert isinstance(_load(path), Site | SiteConfigError)


# ----------------------------------------------------------------------------- STAC

stac_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=15)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "features",
                    "assets",
                    "href",
                    "properties",
                    "datetime",
                    "links",
                    "rel",
                    "id",
                    "visual",
                    "roles",
                    "start_datetime",
                    "stac_version",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


@FUZZ
@given(stac_values, st.sampled_from(["Feature", "FeatureCollection", "Catalog", None]))
def test_random_stac_documents_never_crash_discovery(site_dir, doc, kind):
    if isinstance(doc, dict):
        doc = {**doc, "stac_version": "1.0.0"}
        if kind:
            doc["type"] = kind
    path = site_dir / "doc.json"
    path.write_text(json.dumps(doc))
    files, rejected = discover([path])
    assert files == []  # nothing in the fuzzed documents points at a real image
    assert all(r.reason for r in rejected)
