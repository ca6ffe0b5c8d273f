"""Reliability, catalogs (issue 6): STAC items, hrefs, and remote reads through GDAL.

Remote reads go to servers started by the test on 127.0.0.1 only: a threaded
``http.server`` that honours ``Range`` (for ``/vsicurl/``) and, when moto is installed,
moto's S3 server (for ``/vsis3/``).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

from railwatch.imagery import discover
from reliability import assert_clean_error, rows_by_name, run, scenes, write_aoi, write_yard


def item(item_id, href, dt="2024-06-17T02:15:00Z", **props):
    p = {"datetime": dt, **props}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": None,
        "properties": p,
        "links": [],
        "assets": {"visual": {"href": href, "type": "image/tiff; application=geotiff"}},
    }


def collection(path: Path, items) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


@pytest.fixture
def yard(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    write_yard(img / "yard_a.tif")  # no date in the name or tags
    write_yard(img / "20240620_b.tif", seed=2)
    aoi = write_aoi(tmp_path / "aoi.geojson")
    return tmp_path, img, aoi


# ----------------------------------------------------------------------------- STAC items


def test_item_without_datetime_falls_back_and_does_not_hide_others(yard):
    tmp, img, aoi = yard
    coll = collection(
        tmp / "items.json",
        [
            item("dated", str(img / "yard_a.tif")),
            item("no-datetime-named", str(img / "20240620_b.tif"), dt=None),
            item(
                "no-datetime-at-all", str(img / "yard_a.tif").replace("yard_a", "yard_c"), dt=None
            ),
        ],
    )
    write_yard(img / "yard_c.tif", seed=3)
    out = tmp / "out"
    r = run("count", coll, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    df = scenes(out).set_index("path")
    assert df.loc[str(img / "yard_a.tif"), ["status", "datetime"]].tolist() == [
        "used",
        "2024-06-17T02:15:00Z",
    ]
    # datetime: null -> the file name's date (DESIGN: STAC, then metadata, then name)
    assert df.loc[str(img / "20240620_b.tif"), ["status", "datetime"]].tolist() == [
        "used",
        "2024-06-20T00:00:00Z",
    ]
    assert df.loc[str(img / "yard_c.tif"), ["status", "reason"]].tolist() == [
        "rejected",
        "no acquisition date in STAC, metadata or file name (asset of STAC item "
        "no-datetime-at-all)",
    ]


def test_start_datetime_is_used_when_datetime_is_null(yard):
    tmp, img, _ = yard
    coll = collection(
        tmp / "items.json",
        [
            item(
                "range",
                str(img / "yard_a.tif"),
                dt=None,
                start_datetime="2023-10-05T01:00:00Z",
                end_datetime="2023-10-05T01:01:00Z",
            )
        ],
    )
    files, rejected = discover([coll])
    assert rejected == []
    assert files[0].date_source == "stac"
    assert files[0].datetime.isoformat() == "2023-10-05T01:00:00+00:00"


def test_asset_link_to_missing_file(yard):
    tmp, img, aoi = yard
    coll = collection(
        tmp / "items.json",
        [item("ok", "img/yard_a.tif"), item("gone", "img/20240101_deleted.tif")],
    )
    out = tmp / "out"
    r = run("count", coll, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    rows = scenes(out).set_index("path")
    missing = str(tmp / "img" / "20240101_deleted.tif")
    assert rows.loc[missing, ["status", "reason"]].tolist() == [
        "rejected",
        "file not found (asset of STAC item gone)",
    ]
    # alone: exit 3 naming the missing file
    only = collection(tmp / "only.json", [item("gone", "img/20240101_deleted.tif")])
    r = run("count", only, "--aoi", aoi, "--out", tmp / "out2")
    assert_clean_error(r, 3, missing, "file not found (asset of STAC item gone)")


def test_relative_absolute_and_file_hrefs_through_a_catalog(yard):
    """A catalog -> child catalog -> item files, with a link loop back to the root."""
    tmp, img, aoi = yard
    root = tmp / "stac"
    (root / "sub" / "items").mkdir(parents=True)
    items = {
        "rel": item("rel", "../../../img/yard_a.tif", dt="2024-06-17T02:15:00Z"),
        "abs": item("abs", str(img / "20240620_b.tif"), dt="2024-06-20T02:15:00Z"),
        "url": item("url", (img / "yard_c.tif").as_uri(), dt="2024-06-24T02:15:00Z"),
    }
    write_yard(img / "yard_c.tif", seed=3)
    for k, v in items.items():
        (root / "sub" / "items" / f"{k}.json").write_text(json.dumps(v))
    sub = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "sub",
        "description": "d",
        "links": [{"rel": "item", "href": f"items/{k}.json"} for k in items]
        + [{"rel": "child", "href": "../catalog.json"}],  # a loop: visited once
    }
    (root / "sub" / "catalog.json").write_text(json.dumps(sub))
    cat = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "root",
        "description": "d",
        "links": [
            {"rel": "child", "href": "sub/catalog.json"},
            {"rel": "child", "href": "missing/catalog.json"},
        ],
    }
    (root / "catalog.json").write_text(json.dumps(cat))
    out = tmp / "out"
    r = run("count", root / "catalog.json", "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    df = scenes(out)
    used = df[df["status"] == "used"]
    assert sorted(used["path"]) == sorted(
        str(img / n) for n in ("yard_a.tif", "20240620_b.tif", "yard_c.tif")
    )
    assert sorted(used["datetime"]) == [
        "2024-06-17T02:15:00Z",
        "2024-06-20T02:15:00Z",
        "2024-06-24T02:15:00Z",
    ]
    bad = df[df["status"] == "rejected"]
    assert bad["path"].tolist() == [str(root / "missing" / "catalog.json")]
    assert bad["reason"].str.startswith("linked STAC document missing or not JSON").all()
    assert len(pd.read_csv(out / "counts.csv")) == 3


def test_json_that_is_not_stac_is_rejected(yard):
    tmp, _, aoi = yard
    p = tmp / "20240101_meta.json"
    p.write_text(json.dumps({"hello": "world"}))
    r = run("count", p, "--aoi", aoi, "--out", tmp / "out")
    assert_clean_error(r, 3, str(p), "JSON file is not a STAC item, collection or catalog")


# ----------------------------------------------------------------------------- /vsicurl/


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range ``Range: bytes=a-b`` support; logs the ranges."""

    ranges: list[str]

    def log_message(self, *args):  # keep test output clean
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
        size = path.stat().st_size
        if not m:
            self.send_error(416)
            return None
        start = int(m[1]) if m[1] else max(0, size - int(m[2]))
        end = min(size - 1, int(m[2])) if m[1] and m[2] else size - 1
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        self.server.ranges.append(rng)
        fh = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source, outputfile):
        n = getattr(self, "_remaining", None)
        if n is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(n))
        self._remaining = None


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    served = tmp_path / "served"
    served.mkdir()

    def handler(*a, **kw):
        return _RangeHandler(*a, directory=str(served), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.ranges = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def test_vsicurl_remote_hrefs_with_range_requests(yard, http_root):
    tmp, _, aoi = yard
    served, base, server = http_root
    write_yard(served / "20240617_remote.tif", tiled=True)
    coll = collection(
        tmp / "remote.json",
        [
            item("remote", f"{base}/20240617_remote.tif"),
            item("missing", f"{base}/20240618_missing.tif", dt="2024-06-18T02:15:00Z"),
        ],
    )
    out = tmp / "out"
    r = run("count", coll, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    df = scenes(out).set_index("path")
    ok = f"/vsicurl/{base}/20240617_remote.tif"
    assert df.loc[ok, ["status", "datetime", "crs"]].tolist() == [
        "used",
        "2024-06-17T02:15:00Z",
        "EPSG:32652",
    ]
    bad = df.loc[f"/vsicurl/{base}/20240618_missing.tif"]
    assert bad["status"] == "rejected"
    assert bad["reason"].startswith("not a readable raster (")
    assert bad["reason"].endswith("(asset of STAC item missing)")
    assert server.ranges, "GDAL read through HTTP range requests"
    run_json = json.loads((out / "run.json").read_text())
    assert {"path": ok} in run_json["inputs"]


def test_vsicurl_path_on_the_command_line(yard, http_root):
    tmp, _, aoi = yard
    served, base, _ = http_root
    write_yard(served / "20240619_direct.tif")
    out = tmp / "out"
    r = run("count", f"/vsicurl/{base}/20240619_direct.tif", "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert rows_by_name(out) == {"20240619_direct.tif": ("used", "")}


# ----------------------------------------------------------------------------- /vsis3/


@pytest.fixture
def s3(tmp_path, monkeypatch):
    moto_server = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed (add it to the test extra)"
    )
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with moto[server]")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_MAX_RETRY": "0",
            "NO_PROXY": "127.0.0.1",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for var in (
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
        ):
            monkeypatch.delenv(var, raising=False)
        client = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1"
        )
        client.create_bucket(Bucket="imagery")
        yield client
    finally:
        server.stop()


def test_s3_hrefs_through_vsis3(yard, s3):
    tmp, img, aoi = yard
    local = write_yard(tmp / "20240617_s3.tif")
    s3.upload_file(str(local), "imagery", "tmg/20240617_s3.tif")
    coll = collection(
        tmp / "s3.json",
        [
            item("on-s3", "s3://imagery/tmg/20240617_s3.tif"),
            item("not-on-s3", "s3://imagery/tmg/20240618_absent.tif", dt="2024-06-18T00:00:00Z"),
        ],
    )
    out = tmp / "out"
    r = run("count", coll, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    df = scenes(out).set_index("path")
    assert df.loc["/vsis3/imagery/tmg/20240617_s3.tif", ["status", "crs"]].tolist() == [
        "used",
        "EPSG:32652",
    ]
    bad = df.loc["/vsis3/imagery/tmg/20240618_absent.tif"]
    assert bad["status"] == "rejected" and bad["reason"].startswith("not a readable raster (")
    assert os.path.basename(bad.name) == "20240618_absent.tif"
