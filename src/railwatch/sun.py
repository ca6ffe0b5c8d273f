"""Where the sun stands: it decides which side of a track the shadows fall to.

Used by the simulator to render shadows and by the detector, for acquisitions that give
their time of day, to know the shadow side instead of learning it from the scene.
"""

from __future__ import annotations

import datetime as dt
import math

__all__ = ["sun_position"]


def sun_position(when: dt.datetime, lon: float, lat: float) -> tuple[float, float]:
    """Solar azimuth and elevation (degrees) by the NOAA low-precision formulas.

    Parameters
    ----------
    when : datetime.datetime
        Timezone-aware time.
    lon, lat : float
        Degrees east and north.

    Returns
    -------
    azimuth_deg, elevation_deg : float
        Azimuth clockwise from north; elevation above the horizon.

    Examples
    --------
    >>> az, el = sun_position(dt.datetime(2024, 6, 17, 2, 0, tzinfo=dt.UTC), 130.61, 42.42)
    >>> 120 < az < 160 and 60 < el < 72
    True
    >>> az, el = sun_position(dt.datetime(2023, 1, 14, 2, 0, tzinfo=dt.UTC), 130.61, 42.42)
    >>> 140 < az < 170 and 18 < el < 26
    True
    """
    t = when.astimezone(dt.UTC)
    doy = t.timetuple().tm_yday
    hour = t.hour + t.minute / 60 + t.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    tst = hour * 60 + eqtime + 4 * lon
    ha = math.radians(tst / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    az = math.degrees(
        math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return (az + 180.0) % 360.0, 90.0 - math.degrees(zen)
