"""Small synthetic catalogs with known content, for tests, demos and docs.

:func:`synthetic_catalog` builds a :class:`~iovolc.catalog.CatalogResult`
with every :data:`~iovolc.catalog.CATALOG_COLUMNS` column: a few Davies et
al. (2024) sources at their real positions (Loki Patera, Pele, Tawhaki
Patera -- whose Table A1 id is ``"Tawhaki P."`` with the quotes --,
Tvashtar 'C' near the north pole with a saturated lower-limit perijove, Hiruko
Patera near the south pole) and one new source (``IVC-NEW-0001``, empty
``ref_id``), over the given perijoves. Powers are the table's, scaled by a
seeded log-normal scatter of 10 %, with a +-25 % ~90 % interval; ``outburst``
adds a new, very bright source at one perijove.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc import physics
from iovolc.catalog import CATALOG_COLUMNS, CatalogResult, summarise
from iovolc.flags import Flag, flag_names
from iovolc.reference import load_davies2024, load_perijoves

__all__ = ["synthetic_catalog", "SYNTHETIC_SOURCES", "OUTBURST_POSITION"]

#: Davies et al. (2024) ref_ids used, and the new source (lat, lon W, power GW, T K)
SYNTHETIC_SOURCES: tuple[str, ...] = ("Loki P.", "Pele", '"Tawhaki P."', "Tvashtar 'C'",
                                      "JRM227")
_NEW_SOURCE = {"hotspot_id": "IVC-NEW-0001", "lat_deg": -40.0, "lon_west_deg": 150.0,
               "power_gw": 35.0, "temperature_k": 500.0}
#: where :func:`synthetic_catalog`'s outburst appears (lat N, lon W): far from any source
OUTBURST_POSITION = (-52.0, 12.0)


def _row(hid: str, ref: pd.Series | None, *, lat: float, lon: float, pj: int, power: float,
         t_k: float, flags: int, utc: str, lower_limit: bool) -> dict:
    area = float(physics.area_km2_from_power(power_gw=power, temperature_k=t_k))
    m = float(physics.spectral_power_gw_per_um("M", temperature_k=t_k, area_km2=area))
    l_ = float(physics.spectral_power_gw_per_um("L", temperature_k=t_k, area_km2=area))
    return {
        "hotspot_id": hid,
        "ref_id": "" if ref is None else str(ref["ref_id"]),
        "name": "" if ref is None else str(ref["name"]),
        "lat_deg": lat, "lon_west_deg": lon, "perijove": pj,
        "n_detections": 6, "peak_radiance_w_m2_sr": 1e-3 * power ** 0.5,
        "power_gw": power, "power_gw_per_um": m, "temperature_k": t_k, "flags": flags,
        "first_seen_utc": utc, "last_seen_utc": utc, "power_gw_per_um_l": l_,
        "area_km2": area, "position_uncertainty_km": 4.0, "pixel_scale_km": 6.0,
        "min_emission_deg": 35.0, "match_distance_km": np.nan if ref is None else 3.0,
        "flag_names": flag_names(flags), "lat_deg_pj": lat + 0.02, "lon_west_deg_pj": lon - 0.02,
        "position_uncertainty_km_pj": 5.0, "n_frames": 3, "bands": "LM",
        "power_gw_lo": power * 0.8, "power_gw_hi": np.inf if lower_limit else power * 1.25,
        "temperature_k_lo": t_k * 0.9, "temperature_k_hi": t_k * 1.1,
    }


def synthetic_catalog(
    *,
    perijoves: tuple[int, ...] = (57, 58),
    seed: int = 0,
    outburst: tuple[int, float] | None = None,
) -> CatalogResult:
    """A synthetic catalog (see the module docstring).

    ``outburst=(perijove, power_gw)`` adds ``IVC-NEW-0002`` at
    :data:`OUTBURST_POSITION` with that power at that perijove only.
    ``first_seen_utc`` / ``last_seen_utc`` are the perijove times.
    """
    rng = np.random.default_rng(seed)
    ref = load_davies2024().set_index("ref_id", drop=False)
    pj_utc = load_perijoves().set_index("pj")["perijove_utc"]
    rows: list[dict] = []
    for i, pj in enumerate(sorted(perijoves)):
        utc = str(pj_utc.loc[pj])
        for rid in SYNTHETIC_SOURCES:
            r = ref.loc[rid]
            t_k = float(r["temperature_k"]) if np.isfinite(r["temperature_k"]) else 450.0
            base = float(r["power_gw"])
            power = base * float(np.exp(rng.normal(0.0, 0.1)))
            flags = int(Flag.T_FROM_LM)
            lower = rid == "Tvashtar 'C'" and i == len(perijoves) - 1
            if lower:
                flags |= int(Flag.SATURATED | Flag.POWER_LOWER_LIMIT)
            rows.append(_row(f"IVC-{rid}", r, lat=float(r["lat_deg"]),
                             lon=float(r["lon_west_deg"]), pj=pj, power=power, t_k=t_k,
                             flags=flags, utc=utc, lower_limit=lower))
        n = _NEW_SOURCE
        rows.append(_row(n["hotspot_id"], None, lat=n["lat_deg"], lon=n["lon_west_deg"], pj=pj,
                         power=n["power_gw"] * float(np.exp(rng.normal(0.0, 0.1))),
                         t_k=n["temperature_k"], flags=int(Flag.NEW_SOURCE | Flag.T_FROM_LM),
                         utc=utc, lower_limit=False))
    if outburst is not None:
        pj, power = outburst
        lat, lon = OUTBURST_POSITION
        rows.append(_row("IVC-NEW-0002", None, lat=lat, lon=lon, pj=int(pj), power=float(power),
                         t_k=1100.0, flags=int(Flag.NEW_SOURCE | Flag.T_FROM_LM),
                         utc=str(pj_utc.loc[int(pj)]), lower_limit=False))
    cat = pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))
    first = cat.groupby("hotspot_id")["first_seen_utc"].transform("min")
    last = cat.groupby("hotspot_id")["last_seen_utc"].transform("max")
    cat = cat.assign(first_seen_utc=first, last_seen_utc=last)
    cat = cat.sort_values(["hotspot_id", "perijove"], ignore_index=True)
    return CatalogResult(catalog=cat, hotspots=summarise(cat))
