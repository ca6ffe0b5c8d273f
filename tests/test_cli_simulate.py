import json

import numpy as np
import rasterio
import yaml
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import box, mapping

from railwatch.cli.main import cli
from railwatch.site import to_crs

UTM = "EPSG:32652"


def write_site(path, length_m=140.0, width_m=30.0):
    e, n = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(130.6112, 42.4262)
    aoi = to_crs(
        box(e - width_m / 2, n - length_m / 2, e + width_m / 2, n + length_m / 2), UTM, "EPSG:4326"
    )
    path.write_text(yaml.safe_dump({"name": "tiny", "aoi": mapping(aoi)}))
    return aoi


def test_simulate_writes_scenes_and_truth(tmp_path):
    runner = CliRunner()
    site = tmp_path / "tiny.yaml"
    aoi = write_site(site)
    out = tmp_path / "sim"
    result = runner.invoke(
        cli, ["simulate", str(out), "--dates", "3", "--seed", "4", "--site", str(site)]
    )
    assert result.exit_code == 0, result.output
    assert not result.exception
    assert "Wrote" in result.stderr and result.stdout == ""
    tifs = sorted(out.glob("*.tif"))
    assert len(tifs) >= 3
    for name in ("cars.geojson", "counts.csv", "tracks.geojson", "scenes.csv", "aoi.geojson"):
        assert (out / "truth" / name).is_file()
    counts = (out / "truth" / "counts.csv").read_text().splitlines()
    assert counts[0].startswith("date,datetime,railcars,status,coverage")
    assert len(counts) == 4
    # the yard lies inside the site's AOI
    tracks = json.loads((out / "truth" / "tracks.geojson").read_text())["features"]
    from shapely.geometry import shape

    assert all(aoi.buffer(1e-6).contains(shape(f["geometry"])) for f in tracks)


def _simulate_twice(tmp_path, length_m, args, extra_b=()):
    """Two runs of ``railwatch simulate`` on a tiny site into tmp_path/a and tmp_path/b."""
    runner = CliRunner()
    site = tmp_path / "tiny.yaml"
    write_site(site, length_m, 24.0)
    args = [*args, "--gsd", "1.0", "--seed", "9", "--site", str(site)]
    r1 = runner.invoke(cli, ["simulate", str(tmp_path / "a"), *args])
    r2 = runner.invoke(cli, ["simulate", str(tmp_path / "b"), *args, *extra_b])
    assert r1.exit_code == 0 and r2.exit_code == 0, r2.output
    return tmp_path / "a", tmp_path / "b"


def test_simulate_gsd_option_and_seed_repeatability(tmp_path):
    a, b = _simulate_twice(tmp_path, 100.0, ["--dates", "2"])
    for tif in sorted(a.glob("*.tif")):
        with rasterio.open(tif) as src:
            if src.crs.to_epsg() == 32652:
                assert src.res == (1.0, 1.0)
            data = src.read()
        with rasterio.open(b / tif.name) as src:
            assert np.array_equal(data, src.read())


def test_simulate_rejects_bad_site(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = runner.invoke(cli, ["simulate", str(tmp_path / "o"), "--site", str(bad)])
    assert result.exit_code == 2
    assert "aoi" in result.stderr
    missing = runner.invoke(
        cli, ["simulate", str(tmp_path / "o"), "--site", str(tmp_path / "nope.yaml")]
    )
    assert missing.exit_code == 2


def test_simulate_catenary_flag_changes_images_not_truth(tmp_path):
    a, b = _simulate_twice(tmp_path, 260.0, ["--dates", "1"], extra_b=["--catenary"])
    truth = [(d / "truth" / "cars.geojson").read_bytes() for d in (a, b)]
    assert truth[0] == truth[1]
    tif = sorted(a.glob("*.tif"))[0]
    with rasterio.open(tif) as sa, rasterio.open(b / tif.name) as sb:
        assert not np.array_equal(sa.read(), sb.read())
