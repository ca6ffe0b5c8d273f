"""Type aliases shared across railwatch."""

from __future__ import annotations

from typing import Literal

BBox = tuple[float, float, float, float]
"""(minx, miny, maxx, maxy) in the units of some CRS."""

VehicleType = Literal["tank", "open", "flat", "covered", "locomotive", "unknown"]
VEHICLE_TYPES: tuple[str, ...] = ("tank", "open", "flat", "covered", "locomotive", "unknown")

Status = Literal["ok", "partial", "obscured", "no_coverage"]
STATUSES: tuple[str, ...] = ("ok", "partial", "obscured", "no_coverage")
