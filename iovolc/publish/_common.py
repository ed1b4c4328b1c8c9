"""Small shared helpers of :mod:`iovolc.publish` (no plotting, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from iovolc.catalog import great_circle_km
from iovolc.flags import Flag
from iovolc.jiram import DLAMBDA_UM
from iovolc.publish.ids import plain_ids

#: JIRAM M-band width (um): M-band output (GW) = M spectral power (GW/um) x this
#: (``iovolc.jiram.DLAMBDA_UM['M']``, the same dlambda the radiance -> power relation uses)
M_BAND_WIDTH_UM = DLAMBDA_UM["M"]


def require(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def is_new_source(df: pd.DataFrame) -> np.ndarray:
    """True where a row is a new source: flag NEW_SOURCE or an empty ``ref_id``."""
    flags = df["flags"].to_numpy(np.int64) if "flags" in df else np.zeros(len(df), np.int64)
    ref = df["ref_id"].fillna("").astype(str).to_numpy() if "ref_id" in df else np.full(len(df), "")
    return ((flags & int(Flag.NEW_SOURCE)) != 0) | (ref == "")


def is_lower_limit(df: pd.DataFrame) -> np.ndarray:
    """True where the power is a lower limit: flag POWER_LOWER_LIMIT or ``power_gw_hi`` = +inf."""
    flags = df["flags"].to_numpy(np.int64) if "flags" in df else np.zeros(len(df), np.int64)
    hi = (df["power_gw_hi"].to_numpy(float) if "power_gw_hi" in df
          else np.full(len(df), np.nan))
    return ((flags & int(Flag.POWER_LOWER_LIMIT)) != 0) | np.isposinf(hi)


def with_plain_ids(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``hotspot_id`` are plain tokens (:func:`~iovolc.publish.ids.plain_id`)."""
    out = df.copy()
    raw = out["hotspot_id"].astype(str)
    mapping = dict(zip(pd.unique(raw), plain_ids(pd.unique(raw)), strict=True))
    out["hotspot_id"] = raw.map(mapping)
    return out


def lon_east_180(lon_west_deg: ArrayLike) -> np.ndarray:
    """West longitude (deg) -> East longitude in [-180, 180): ``lon_E = -lon_W``, wrapped."""
    e = np.mod(-np.asarray(lon_west_deg, dtype=float) + 180.0, 360.0) - 180.0
    return e


def angular_sep_deg(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle separation in degrees (broadcasting; either longitude sense, same for both)."""
    return np.rad2deg(np.asarray(great_circle_km(lat1, lon1, lat2, lon2, radius_km=1.0)))


def json_value(v):
    """A JSON-safe Python scalar: numpy -> Python, NaN / +-inf -> None."""
    if v is None:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if v is pd.NA or v is pd.NaT:
        return None
    return str(v) if not isinstance(v, str) else v
