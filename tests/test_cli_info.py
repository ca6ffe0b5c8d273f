from click.testing import CliRunner

from railwatch.cli.main import cli
from rasters import X0, Y0, aoi_wgs84, ground_pattern, utm_transform, write_aoi, write_geotiff


def test_info_prints_table_and_coverage(tmp_path):
    write_geotiff(tmp_path / "20230114_a.tif", ground_pattern(200, 200), transform=utm_transform())
    (tmp_path / "20230115_empty.tif").write_bytes(b"")
    # AOI: left half over the image, right half outside it.
    aoi = write_aoi(tmp_path / "aoi.geojson", aoi_wgs84(X0 + 50, Y0 - 60, X0 + 150, Y0 - 20))
    result = CliRunner().invoke(cli, ["info", str(tmp_path), "--aoi", str(aoi)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    header = lines[0].split("\t")
    assert header == [
        "path",
        "date",
        "date_source",
        "crs",
        "gsd_m",
        "size",
        "bands",
        "dtype",
        "aoi_coverage",
        "status",
    ]
    row = dict(zip(header, lines[1].split("\t"), strict=True))
    assert row["date"] == "2023-01-14T00:00:00Z"
    assert row["date_source"] == "filename"
    assert row["crs"] == "EPSG:32652"
    assert row["gsd_m"] == "0.500"
    assert row["bands"].startswith("3 ")
    assert abs(float(row["aoi_coverage"]) - 0.5) < 0.05
    assert "rejected: file is empty" in lines[2]


def test_info_nothing_usable_exits_3(tmp_path):
    (tmp_path / "20230115_empty.tif").write_bytes(b"")
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "20230115_empty.tif")])
    assert result.exit_code == 3
    assert "Error: no usable image" in result.stderr
    assert "Traceback" not in result.output


def test_info_bad_aoi_exits_2(tmp_path):
    write_geotiff(tmp_path / "20230114_a.tif", ground_pattern(20, 20), transform=utm_transform())
    (tmp_path / "aoi.geojson").write_text("{not json")
    result = CliRunner().invoke(
        cli, ["info", str(tmp_path), "--aoi", str(tmp_path / "aoi.geojson")]
    )
    assert result.exit_code == 2
    assert str(tmp_path / "aoi.geojson") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
