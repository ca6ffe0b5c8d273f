"""Many sites and incremental re-runs on one real Dask cluster (127.0.0.1).

tests/test_cluster.py checks one site against a serial run; here two sites share one
client, and a re-run on the cluster analyses only the new acquisition.
"""

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely import affinity

pytest.importorskip("distributed", reason="dask.distributed is not installed")

from railwatch.cli.main import cli  # noqa: E402
from test_cluster import cluster  # noqa: E402, F401 - the scheduler + worker fixture
from test_crash import _archive  # noqa: E402
from test_incremental import _analysed, _stamp  # noqa: E402
from test_multisite import _site  # noqa: E402


def _count(*args):
    r = CliRunner().invoke(cli, ["count", *map(str, args)])
    assert r.exit_code == 0, r.output
    return r


@pytest.mark.dask
def test_two_sites_on_one_cluster_match_serial_and_rerun_incrementally(tmp_path, cluster):  # noqa: F811
    img = tmp_path / "img"
    scene = _archive(img, ["20240301", "20240308", "20240315"])
    sites = tmp_path / "sites"
    sites.mkdir()
    # Two overlapping AOIs, each wide enough to hold both trains.
    _site(sites / "a.yaml", "West", scene.aoi.intersection(affinity.translate(scene.aoi, -5, 0)))
    _site(sites / "b.yaml", "East", scene.aoi.intersection(affinity.translate(scene.aoi, 5, 0)))
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    _count(img, "--site", sites, "--out", serial)
    _count(img, "--site", sites, "--out", dask, "--scheduler", cluster)
    for sub in ("west", "east"):
        pd.testing.assert_frame_equal(
            pd.read_csv(serial / sub / "counts.csv"), pd.read_csv(dask / sub / "counts.csv")
        )
        va = gpd.read_file(serial / sub / "railcars.gpkg", layer="railcars")
        vb = gpd.read_file(dask / sub / "railcars.gpkg", layer="railcars")
        assert len(va) == len(vb) > 0
        assert va.drop(columns="geometry").equals(vb.drop(columns="geometry"))
        assert va.geometry.geom_equals_exact(vb.geometry, 1e-6).all()

    # One new scene: on the cluster, each site analyses exactly that acquisition (the
    # rows of the three older ones keep their sentinel stamp).
    _archive(img, ["20240322"], seed0=30)
    for sub in ("west", "east"):
        _stamp(dask / sub)
    r = _count(img, "--site", sites, "--out", dask, "--scheduler", cluster)
    assert r.stderr.count("1 analysed now, 3 from earlier runs") == 2
    for sub in ("west", "east"):
        assert _analysed(dask / sub) == ["20240322T000000"]
        assert len(pd.read_csv(dask / sub / "counts.csv")) == 4
