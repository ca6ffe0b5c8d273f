"""Imagery ingest: discover scenes, find acquisition times, group tiles, read the AOI window
warped onto the site grid."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from railwatch.site import SiteGrid

__all__ = ["Scene"]


@dataclass(frozen=True, slots=True)
class Scene:
    """One acquisition read onto the site grid.

    Attributes
    ----------
    datetime : datetime.datetime
        Acquisition time, timezone-aware UTC.
    data : numpy.ndarray
        float32 array (bands, height, width) on ``grid``, scaled to about 0-1
        (digital numbers divided by the product's white level). Unobserved pixels are 0.
    valid : numpy.ndarray
        bool (height, width): True where some input tile observed the ground.
    grid : SiteGrid
    bands : tuple of str
        Colour name of each band of ``data``: a subset of ``red, green, blue, nir`` or
        ``("pan",)``.
    sources : tuple of str
        Files mosaicked into this scene.
    crs : str
        CRS of the (first) source file.
    gsd_m : float
        Native ground sample distance of the sources, metres.
    """

    datetime: dt.datetime
    data: np.ndarray
    valid: np.ndarray
    grid: SiteGrid
    bands: tuple[str, ...]
    sources: tuple[str, ...]
    crs: str
    gsd_m: float

    def gray(self) -> np.ndarray:
        """Panchromatic-like brightness (height, width), float32 0-1."""
        idx = [i for i, b in enumerate(self.bands) if b in ("red", "green", "blue", "pan")]
        if not idx:
            idx = list(range(self.data.shape[0]))
        return self.data[idx].mean(axis=0).astype(np.float32)

    def rgb(self) -> np.ndarray:
        """(height, width, 3) float32 true colour; grey repeated for panchromatic scenes."""
        if all(b in self.bands for b in ("red", "green", "blue")):
            return np.stack([self.data[self.bands.index(b)] for b in ("red", "green", "blue")], axis=-1)
        g = self.gray()
        return np.stack([g, g, g], axis=-1)

    @property
    def date(self) -> dt.date:
        """UTC calendar date of the acquisition."""
        return self.datetime.astimezone(dt.UTC).date()
