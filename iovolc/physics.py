"""Thermal-emission physics for Io hotspots seen by JIRAM.

Pure, numpy-vectorised functions: Planck radiance, JIRAM band radiances,
the published radiance <-> power relation, a single-temperature source model,
the L/M colour temperature and reflected-sunlight irradiance.

Units are in the names: wavelengths in um, temperatures in K, radiances in
W m-2 sr-1 (band) or W m-2 sr-1 um-1 (spectral), areas in km2, powers in GW
(total) or GW/um (spectral).

Bands are the JIRAM imager bands of :mod:`iovolc.jiram`. A band is modelled
as a top-hat of width ``jiram.DLAMBDA_UM[band]`` centred on
``jiram.BAND_CENTER_UM[band]``, so that ``band_radiance == mean spectral
radiance * DLAMBDA`` -- the same ``dlambda`` the published radiance -> power
relation divides by (Davies et al. 2024; Mura et al. 2024).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import constants as _c

from iovolc import jiram

__all__ = [
    "STEFAN_BOLTZMANN",
    "SUN_RADIUS_KM",
    "SUN_TEMPERATURE_K",
    "AU_KM",
    "planck_spectral_radiance",
    "band_radiance",
    "band_mean_spectral_radiance",
    "power_gw_per_um_from_radiance",
    "radiance_from_power_gw_per_um",
    "spectral_power_gw_per_um",
    "total_power_gw",
    "area_km2_from_power",
    "lm_ratio",
    "temperature_from_lm_ratio",
    "solar_spectral_irradiance",
    "solar_band_irradiance",
]

#: Stefan-Boltzmann constant, W m-2 K-4 (CODATA, via scipy)
STEFAN_BOLTZMANN = _c.Stefan_Boltzmann
#: effective temperature of the Sun (IAU 2015 B3 nominal), K
SUN_TEMPERATURE_K = 5772.0
#: nominal solar radius (IAU 2015 B3), km
SUN_RADIUS_KM = 695_700.0
#: astronomical unit, km
AU_KM = _c.astronomical_unit / 1e3

# first and second radiation constants for B_lambda with lambda in um:
#   B = C1 / lam^5 / (exp(C2 / (lam T)) - 1)   [W m-2 sr-1 um-1]
# 2 h c^2 [W m2 sr-1] / (lam_um * 1e-6 m)^5 * 1e-6 (per um) = 2 h c^2 * 1e24 / lam_um^5
_C1_W_UM4_M2_SR = 2.0 * _c.h * _c.c**2 * 1e24
_C2_UM_K = _c.h * _c.c / _c.k * 1e6

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(32)


def _scalarise(x: np.ndarray) -> np.ndarray | float:
    """0-d arrays -> numpy scalars; anything else unchanged."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def _check_band(band: str) -> None:
    if band not in jiram.DLAMBDA_UM:
        raise ValueError(f"unknown JIRAM band {band!r} (known: {sorted(jiram.DLAMBDA_UM)})")


def planck_spectral_radiance(
    wavelength_um: ArrayLike, temperature_k: ArrayLike
) -> np.ndarray | float:
    """Blackbody spectral radiance B_lambda, W m-2 sr-1 um-1.

    Broadcasts ``wavelength_um`` against ``temperature_k``. Written with
    ``exp(-x) / -expm1(-x)`` so that cold bodies (large ``x = hc / lambda k T``)
    underflow quietly to 0 instead of overflowing; ``T <= 0`` gives 0.
    """
    lam = np.asarray(wavelength_um, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        x = _C2_UM_K / (lam * t)
        x = np.where(t > 0, x, np.inf)
        ex = np.exp(-x)
        b = _C1_W_UM4_M2_SR / lam**5 * ex / -np.expm1(-x)
    b = np.where(np.isfinite(x), b, 0.0)
    # propagate NaN inputs
    b = np.where(np.isnan(lam) | np.isnan(t), np.nan, b)
    return _scalarise(b)


def band_radiance(band: str, temperature_k: ArrayLike) -> np.ndarray | float:
    """Blackbody radiance integrated over a JIRAM band, W m-2 sr-1.

    The band is ``BAND_CENTER_UM[band] +- DLAMBDA_UM[band] / 2``, integrated
    with 32-node Gauss-Legendre quadrature. Vectorised over temperature.
    """
    _check_band(band)
    width = jiram.DLAMBDA_UM[band]
    centre = jiram.BAND_CENTER_UM[band]
    lam = centre + 0.5 * width * _GL_NODES
    t = np.asarray(temperature_k, dtype=float)[..., np.newaxis]
    b = planck_spectral_radiance(lam, t)
    return _scalarise(np.asarray(0.5 * width * np.sum(b * _GL_WEIGHTS, axis=-1)))


def band_mean_spectral_radiance(band: str, temperature_k: ArrayLike) -> np.ndarray | float:
    """Band-mean blackbody spectral radiance, W m-2 sr-1 um-1 (``band_radiance / DLAMBDA``)."""
    return band_radiance(band, temperature_k) / jiram.DLAMBDA_UM[band]


def _pixel_factor_m2(range_km: ArrayLike, emission_deg: ArrayLike, ifov_rad: float) -> np.ndarray:
    """pi * (pixel size m)^2 / cos(emission): m2 sr (pi sr: Lambertian hemisphere)."""
    pixel_m = np.asarray(range_km, dtype=float) * 1e3 * ifov_rad
    return np.pi * pixel_m**2 / np.cos(np.deg2rad(np.asarray(emission_deg, dtype=float)))


def power_gw_per_um_from_radiance(
    radiance_w_m2_sr: ArrayLike,
    *,
    band: str,
    range_km: ArrayLike,
    emission_deg: ArrayLike,
    ifov_rad: float = jiram.IFOV_RAD,
) -> np.ndarray | float:
    """Published JIRAM radiance -> spectral power relation, GW/um.

    ``P = L / dlambda * pi * (range * IFOV)^2 / cos(emission) / 1e9`` where
    ``L`` is the pixel-summed band radiance of the source (W m-2 sr-1),
    ``dlambda = DLAMBDA_UM[band]`` and the pixel size is ``range * IFOV``
    (Davies et al. 2024; Mura et al. 2024).
    """
    _check_band(band)
    spectral = np.asarray(radiance_w_m2_sr, dtype=float) / jiram.DLAMBDA_UM[band]
    return _scalarise(
        np.asarray(spectral * _pixel_factor_m2(range_km, emission_deg, ifov_rad) / 1e9)
    )


def radiance_from_power_gw_per_um(
    power_gw_per_um: ArrayLike,
    *,
    band: str,
    range_km: ArrayLike,
    emission_deg: ArrayLike,
    ifov_rad: float = jiram.IFOV_RAD,
) -> np.ndarray | float:
    """Inverse of :func:`power_gw_per_um_from_radiance`: pixel-summed band radiance, W m-2 sr-1."""
    _check_band(band)
    factor = _pixel_factor_m2(range_km, emission_deg, ifov_rad)
    out = np.asarray(power_gw_per_um, dtype=float) * 1e9 / factor * jiram.DLAMBDA_UM[band]
    return _scalarise(np.asarray(out))


def spectral_power_gw_per_um(
    band: str, *, temperature_k: ArrayLike, area_km2: ArrayLike
) -> np.ndarray | float:
    """Spectral power of a single-temperature blackbody source in a band, GW/um.

    ``pi * band_mean_spectral_radiance * area`` (Lambertian emitter).
    """
    mean = band_mean_spectral_radiance(band, temperature_k)
    return _scalarise(np.asarray(np.pi * mean * np.asarray(area_km2, dtype=float) * 1e6 / 1e9))


def total_power_gw(*, temperature_k: ArrayLike, area_km2: ArrayLike) -> np.ndarray | float:
    """Total (bolometric) power of a blackbody source, GW: ``sigma T^4 A``."""
    t = np.asarray(temperature_k, dtype=float)
    a = np.asarray(area_km2, dtype=float)
    return _scalarise(np.asarray(STEFAN_BOLTZMANN * t**4 * a * 1e6 / 1e9))


def area_km2_from_power(*, power_gw: ArrayLike, temperature_k: ArrayLike) -> np.ndarray | float:
    """Blackbody area (km2) radiating ``power_gw`` at ``temperature_k``."""
    t = np.asarray(temperature_k, dtype=float)
    p = np.asarray(power_gw, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p * 1e9 / (STEFAN_BOLTZMANN * t**4) / 1e6
    return _scalarise(np.asarray(out))


def lm_ratio(temperature_k: ArrayLike) -> np.ndarray | float:
    """Blackbody L/M band-radiance ratio (``band_radiance('L') / band_radiance('M')``).

    This is the ratio of the two JIRAM band radiances (W m-2 sr-1) of the same
    source; it increases monotonically with temperature.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return band_radiance("L", temperature_k) / band_radiance("M", temperature_k)


_RATIO_T_MIN_K = 150.0
_RATIO_T_MAX_K = 2000.0
_RATIO_GRID_T_K = np.geomspace(_RATIO_T_MIN_K, _RATIO_T_MAX_K, 4001)
_RATIO_GRID_LOG = np.log(lm_ratio(_RATIO_GRID_T_K))
_RATIO_GRID_INV_T = 1.0 / _RATIO_GRID_T_K
assert np.all(np.diff(_RATIO_GRID_LOG) > 0), "L/M ratio must increase with T"


def temperature_from_lm_ratio(ratio_l_over_m: ArrayLike) -> np.ndarray | float:
    """Blackbody colour temperature (K) from the L/M band-radiance ratio.

    Inverts :func:`lm_ratio` by interpolation on a fine log-spaced grid over
    150-2000 K (``1/T`` against ``ln ratio``, which is nearly linear). Ratios
    outside that range, non-positive or NaN give NaN.
    """
    r = np.asarray(ratio_l_over_m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log(np.where(r > 0, r, np.nan))
    inside = (log_r >= _RATIO_GRID_LOG[0]) & (log_r <= _RATIO_GRID_LOG[-1])
    inv_t = np.interp(
        np.where(inside, log_r, _RATIO_GRID_LOG[0]), _RATIO_GRID_LOG, _RATIO_GRID_INV_T
    )
    return _scalarise(np.asarray(np.where(inside, 1.0 / inv_t, np.nan)))


def solar_spectral_irradiance(
    wavelength_um: ArrayLike, *, sun_distance_km: ArrayLike
) -> np.ndarray | float:
    """Solar spectral irradiance, W m-2 um-1, at ``sun_distance_km``.

    **Blackbody approximation**: a 5772 K Planck Sun of radius 695 700 km
    (``pi B (R_sun / d)^2``). Good to a few per cent in the JIRAM bands'
    continuum; it ignores solar absorption lines and limb darkening.
    """
    dilution = (SUN_RADIUS_KM / np.asarray(sun_distance_km, dtype=float)) ** 2
    b = planck_spectral_radiance(wavelength_um, SUN_TEMPERATURE_K)
    return _scalarise(np.asarray(np.pi * b * dilution))


def solar_band_irradiance(band: str, *, sun_distance_km: ArrayLike) -> np.ndarray | float:
    """Solar irradiance integrated over a JIRAM band, W m-2, at ``sun_distance_km``.

    **Blackbody approximation** (see :func:`solar_spectral_irradiance`): a
    5772 K Sun with R_sun = 695 700 km; band as in :func:`band_radiance`.
    """
    dilution = (SUN_RADIUS_KM / np.asarray(sun_distance_km, dtype=float)) ** 2
    return _scalarise(np.asarray(np.pi * band_radiance(band, SUN_TEMPERATURE_K) * dilution))
