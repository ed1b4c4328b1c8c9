"""Scene truth: Io's hotspots as they really are in the simulation, per perijove.

Never the numbers the pipeline uses as priors:

* Davies et al. (2024) sources: true position = catalog + N(0, 0.15 deg) per
  coordinate; true temperature = catalog T x lognormal(sigma 0.2), clipped to
  250-1400 K (the 59 without a temperature: U(300, 900) K); both fixed for
  the scenario. Per perijove: power = catalog power x 10**N(0, variability)
  and ~10 % of the sources are off (power 0) -- none when the variability is 0.
* New sources (``NEW-nnn``, not in the catalog): uniform on the sphere, at
  least 300 km (great circle, R = 1821.6 km) from every catalog source and
  100 km from each other; base power resampled from the catalog's powers;
  T U(300, 1000) K; the same variability per perijove.
* ``ERUPTION-001`` at the eruption perijove: 72 S, 110 W, 100,000 km2 at
  400 K (145 TW: Mura et al. / NASA, Dec 27 2024 -- southern hemisphere near
  the south pole, ~100,000 km2, > 80 TW), resolved and saturated.

Area = P / (sigma T^4); band powers from the Planck band radiance
(:mod:`iovolc.physics`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc import physics, reference
from iovolc.sim.raycast import great_circle_km

POSITION_SIGMA_DEG = 0.15
T_SIGMA_LN = 0.2
T_CLIP_K = (250.0, 1400.0)
UNKNOWN_T_K = (300.0, 900.0)
NEW_T_K = (300.0, 1000.0)
NEW_MIN_SEPARATION_KM = 300.0
OFF_FRACTION = 0.1
ERUPTION = {"lat_deg": -72.0, "lon_west_deg": 110.0, "area_km2": 1.0e5, "temperature_k": 400.0}

COLUMNS = ["perijove", "source_id", "ref_id", "name", "is_new", "is_eruption", "active",
           "lat_deg", "lon_west_deg", "catalog_lat_deg", "catalog_lon_west_deg",
           "temperature_k", "area_km2", "power_gw", "power_gw_per_um_m", "power_gw_per_um_l"]


def _catalog_truth(seed: int) -> pd.DataFrame:
    """Persistent truth of the catalog sources (position, temperature, base power)."""
    cat = reference.load_davies2024().reset_index(drop=True)
    rng = np.random.default_rng([seed, 21])
    n = len(cat)
    lat = np.clip(cat["lat_deg"].to_numpy(float) + rng.normal(0, POSITION_SIGMA_DEG, n), -90, 90)
    lon = np.mod(cat["lon_west_deg"].to_numpy(float) + rng.normal(0, POSITION_SIGMA_DEG, n), 360)
    t_cat = cat["temperature_k"].to_numpy(dtype=float, na_value=np.nan)
    t_true = np.clip(t_cat * rng.lognormal(0.0, T_SIGMA_LN, n), *T_CLIP_K)
    t_true = np.where(np.isfinite(t_cat), t_true, rng.uniform(*UNKNOWN_T_K, n))
    return pd.DataFrame({
        "source_id": cat["ref_id"].astype(str), "ref_id": cat["ref_id"].astype(str),
        "name": cat["name"].fillna("").astype(str), "is_new": False, "is_eruption": False,
        "lat_deg": lat, "lon_west_deg": lon,
        "catalog_lat_deg": cat["lat_deg"].to_numpy(float),
        "catalog_lon_west_deg": cat["lon_west_deg"].to_numpy(float),
        "temperature_k": t_true, "base_power_gw": cat["power_gw"].to_numpy(float)})


def _new_sources(seed: int, n_new: int, catalog: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 31])
    lat_c, lon_c = catalog["catalog_lat_deg"].to_numpy(), catalog["catalog_lon_west_deg"].to_numpy()
    lats: list[float] = []
    lons: list[float] = []
    while len(lats) < n_new:
        lat = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
        lon = float(rng.uniform(0.0, 360.0))
        if great_circle_km(lat, lon, lat_c, lon_c).min() < NEW_MIN_SEPARATION_KM:
            continue
        if lats and great_circle_km(lat, lon, np.array(lats), np.array(lons)).min() < 100.0:
            continue
        lats.append(lat)
        lons.append(lon)
    powers = rng.choice(catalog["base_power_gw"].to_numpy(), n_new)
    return pd.DataFrame({
        "source_id": [f"NEW-{k + 1:03d}" for k in range(n_new)], "ref_id": "", "name": "",
        "is_new": True, "is_eruption": False, "lat_deg": lats, "lon_west_deg": lons,
        "catalog_lat_deg": np.nan, "catalog_lon_west_deg": np.nan,
        "temperature_k": rng.uniform(*NEW_T_K, n_new), "base_power_gw": powers})


def perijove_sources(perijove: int, *, seed: int, variability_dex: float = 0.3,
                     n_new_sources: int = 25, eruption: bool = False) -> pd.DataFrame:
    """Every source of the scene at one perijove (the columns of truth/sources.csv)."""
    cat = _catalog_truth(seed)
    src = pd.concat([cat, _new_sources(seed, n_new_sources, cat)], ignore_index=True)
    rng = np.random.default_rng([seed, perijove, 5])
    n = len(src)
    factor = 10.0 ** rng.normal(0.0, variability_dex, n)
    off = rng.random(n) < (OFF_FRACTION if variability_dex > 0 else 0.0)
    power = np.where(off, 0.0, src["base_power_gw"].to_numpy() * factor)
    src = src.drop(columns="base_power_gw").assign(perijove=perijove, power_gw=power)
    if eruption:
        e = ERUPTION
        p = physics.total_power_gw(temperature_k=e["temperature_k"], area_km2=e["area_km2"])
        src = pd.concat([src, pd.DataFrame([{
            "source_id": "ERUPTION-001", "ref_id": "", "name": "south polar eruption",
            "is_new": True, "is_eruption": True, "lat_deg": e["lat_deg"],
            "lon_west_deg": e["lon_west_deg"], "catalog_lat_deg": np.nan,
            "catalog_lon_west_deg": np.nan, "temperature_k": e["temperature_k"],
            "perijove": perijove, "power_gw": float(p)}])], ignore_index=True)
    t = src["temperature_k"].to_numpy(float)
    area = physics.area_km2_from_power(power_gw=src["power_gw"].to_numpy(float), temperature_k=t)
    src["area_km2"] = area
    src["active"] = src["power_gw"] > 0
    src["power_gw_per_um_m"] = physics.spectral_power_gw_per_um("M", temperature_k=t,
                                                                area_km2=area)
    src["power_gw_per_um_l"] = physics.spectral_power_gw_per_um("L", temperature_k=t,
                                                                area_km2=area)
    return src[COLUMNS].reset_index(drop=True)
