"""Output columns of docs/design.md, shared by the tests that check them."""

COUNTS_COLUMNS = [
    "date", "datetime", "railcars", "railcars_low", "railcars_high", "status", "coverage",
    "cloud", "gsd_m", "shift_m", "n_tiles", "tank", "open", "flat", "covered", "locomotive",
    "unknown", "baseline", "excess", "ratio", "anomaly", "scenes",
]  # fmt: skip
WEEKLY_COLUMNS = [
    "week_start", "n_scenes", "railcars_mean", "railcars_max", "baseline", "excess", "anomaly",
]  # fmt: skip
SCENES_COLUMNS = ["path", "status", "reason", "datetime", "crs", "gsd_m"]
