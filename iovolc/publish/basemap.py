"""The Io basemap shipped with iovolc and its pixel <-> (lat, West lon) mapping.

The image is a downscaled copy (2048 x 1024, JPEG) of the USGS Astrogeology
Io global colour mosaic (Galileo SSI + Voyager, simple cylindrical, centred
on 180 deg; public domain), as kept in volcanopele/juno
(``iovolc/data/basemap/README.md``).

**Longitude direction (checked, not assumed).** Column 0 is at **360 deg W**
and West longitude decreases to the right, to 0 W at the last column (so
East longitude increases to the right, 0 E at the left edge, 180 at the
centre); row 0 is 90 N. Evidence: Loki Patera, the dark horseshoe at
12.8 N, 308.4 W (Davies et al. 2024 Table A1), falls at x = (360 - 308.4) /
360 of the width: in a +-3 deg box there, 33 % of the pixels (mean of R, G, B)
are darker than 0.6 x the map's median (box mean 97 vs map median 123); at
the mirrored longitude (51.6 W) none are (box mean 133), and map-wide 1.6 %
are. ``tests/test_publish_maps.py`` checks it. By eye, Pele's red ring
(18.7 S, 255.3 W) also sits where this mapping puts it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BASEMAP_FILE",
    "BASEMAP_SOURCE",
    "load_basemap",
    "lonlat_to_pixel",
    "pixel_to_lonlat",
    "BASEMAP_EXTENT",
]

BASEMAP_FILE = "io_galileo_voyager_2048x1024_180w.jpg"
BASEMAP_SOURCE = (
    "USGS Astrogeology, Io Galileo SSI / Voyager global colour mosaic "
    "(Io_GalileoSSI-Voyager_Global_Mosaic_ClrMerge_2km_180W), public domain; "
    "downscaled to 2048 x 1024"
)
#: matplotlib ``imshow`` extent (left, right, bottom, top) in (West lon, lat) deg:
#: 360 W at the left edge, 0 W at the right edge
BASEMAP_EXTENT = (360.0, 0.0, -90.0, 90.0)


@lru_cache(maxsize=1)
def _basemap() -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    raw = (resources.files("iovolc") / "data" / "basemap" / BASEMAP_FILE).read_bytes()
    with Image.open(BytesIO(raw)) as im:
        arr = np.asarray(im.convert("RGB"))
    arr.setflags(write=False)
    return arr


def load_basemap() -> np.ndarray:
    """The basemap as a read-only ``uint8`` array (rows, cols, 3); row 0 = 90 N,
    column 0 = 360 W (see the module docstring)."""
    return _basemap()


def lonlat_to_pixel(
    lon_west_deg: ArrayLike, lat_deg: ArrayLike, *, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) as float pixel coordinates (pixel centres at integers) of
    (West longitude, latitude) on a simple-cylindrical map of ``shape`` (rows, cols)
    laid out like the basemap: 360 W at the left edge, 0 W at the right, 90 N on top."""
    rows, cols = shape
    lon = np.mod(np.asarray(lon_west_deg, dtype=float), 360.0)
    lat = np.asarray(lat_deg, dtype=float)
    col = (360.0 - lon) / 360.0 * cols - 0.5
    row = (90.0 - lat) / 180.0 * rows - 0.5
    return col, row


def pixel_to_lonlat(
    col: ArrayLike, row: ArrayLike, *, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`lonlat_to_pixel`: (West lon in [0, 360), lat) in deg."""
    rows, cols = shape
    lon = np.mod(360.0 - (np.asarray(col, dtype=float) + 0.5) / cols * 360.0, 360.0)
    lat = 90.0 - (np.asarray(row, dtype=float) + 0.5) / rows * 180.0
    return lon, lat
