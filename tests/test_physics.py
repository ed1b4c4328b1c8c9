"""Tests of iovolc.physics against independent truths."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.modeling.physical_models import BlackBody
from scipy import integrate, optimize

from iovolc import jiram, physics

SIGMA = 5.670374419e-8  # W m-2 K-4, CODATA 2018 (exact)
WIEN_B_UM_K = 2897.771955  # Wien displacement constant, um K (CODATA 2018)


@pytest.mark.parametrize("temperature_k", [300.0, 1000.0, 5772.0])
def test_planck_peak_follows_wien(temperature_k):
    res = optimize.minimize_scalar(
        lambda lam: -physics.planck_spectral_radiance(lam, temperature_k),
        bounds=(0.3 * WIEN_B_UM_K / temperature_k, 3 * WIEN_B_UM_K / temperature_k),
        method="bounded",
        options={"xatol": 1e-9},
    )
    assert res.x == pytest.approx(WIEN_B_UM_K / temperature_k, rel=1e-5)


@pytest.mark.parametrize(
    ("wavelength_um", "temperature_k"),
    [(3.46, 300.0), (4.79, 150.0), (4.79, 1035.0), (0.5, 5772.0), (10.0, 120.0), (3.46, 100.0)],
)
def test_planck_matches_astropy_blackbody(wavelength_um, temperature_k):
    bb = BlackBody(temperature=temperature_k * u.K, scale=1.0 * u.W / (u.m**2 * u.um * u.sr))
    expected = bb(wavelength_um * u.um).to_value(u.W / (u.m**2 * u.um * u.sr))
    got = physics.planck_spectral_radiance(wavelength_um, temperature_k)
    assert got == pytest.approx(expected, rel=1e-9)


def test_planck_vectorised_and_cold_safe():
    lam = np.array([3.46, 4.79])[:, None]
    t = np.array([0.0, 20.0, 100.0, 1000.0])
    b = physics.planck_spectral_radiance(lam, t)  # filterwarnings=error: no overflow
    assert b.shape == (2, 4)
    assert np.all(b[:, 0] == 0.0)
    assert np.all(np.diff(b, axis=1) >= 0)
    assert isinstance(physics.planck_spectral_radiance(4.79, 300.0), float)


@pytest.mark.parametrize("temperature_k", [150.0, 300.0, 1000.0])
def test_stefan_boltzmann_from_planck_integral(temperature_k):
    # pi * integral of B_lambda over all wavelengths = sigma T^4
    peak = WIEN_B_UM_K / temperature_k
    pieces = [0.05 * peak, 0.5 * peak, peak, 2 * peak, 10 * peak, 100 * peak, 1e4 * peak]
    total = sum(
        integrate.quad(lambda lam: physics.planck_spectral_radiance(lam, temperature_k), a, b)[0]
        for a, b in zip(pieces[:-1], pieces[1:], strict=True)
    )
    assert math.pi * total == pytest.approx(SIGMA * temperature_k**4, rel=1e-5)


@pytest.mark.parametrize("band", ["L", "M"])
@pytest.mark.parametrize("temperature_k", [200.0, 600.0, 1400.0])
def test_band_radiance_is_integral_over_band(band, temperature_k):
    lo = jiram.BAND_CENTER_UM[band] - jiram.DLAMBDA_UM[band] / 2
    hi = jiram.BAND_CENTER_UM[band] + jiram.DLAMBDA_UM[band] / 2
    expected = integrate.quad(
        lambda lam: physics.planck_spectral_radiance(lam, temperature_k), lo, hi
    )[0]
    assert physics.band_radiance(band, temperature_k) == pytest.approx(expected, rel=1e-10)
    assert physics.band_mean_spectral_radiance(band, temperature_k) == pytest.approx(
        expected / jiram.DLAMBDA_UM[band], rel=1e-10
    )


def test_band_radiance_vectorised_over_temperature():
    t = np.array([[200.0, 400.0], [800.0, 1600.0]])
    got = physics.band_radiance("M", t)
    assert got.shape == (2, 2)
    for idx in np.ndindex(t.shape):
        assert got[idx] == pytest.approx(physics.band_radiance("M", float(t[idx])))
    with pytest.raises(ValueError):
        physics.band_radiance("K", 300.0)


def test_davies2024_first_row_total_power():
    # Davies et al. 2024 Table A1 rank 1 (JRM111): 0.0029 km2, 1035 K -> 0.19 GW
    assert round(physics.total_power_gw(temperature_k=1035.0, area_km2=0.0029), 2) == 0.19
    assert physics.area_km2_from_power(power_gw=0.19, temperature_k=1035.0) == pytest.approx(
        0.0029, rel=0.03
    )


def test_total_power_and_area_inverse():
    t = np.array([250.0, 500.0, 1200.0])
    a = np.array([1.0, 0.2, 0.003])
    p = physics.total_power_gw(temperature_k=t, area_km2=a)
    np.testing.assert_allclose(p, SIGMA * t**4 * a * 1e6 / 1e9, rtol=1e-9)
    np.testing.assert_allclose(
        physics.area_km2_from_power(power_gw=p, temperature_k=t), a, rtol=1e-12
    )


def test_power_radiance_hand_computed():
    # L = 0.1 W m-2 sr-1 in M at 50 000 km, emission 60 deg:
    # pixel = 5e7 m * 237.767e-6 = 11888.35 m; P = 0.1/0.4975 * pi * 11888.35^2 / 0.5 / 1e9
    pixel_m = 5.0e7 * 237.767e-6
    expected = 0.1 / 0.4975 * math.pi * pixel_m**2 / 0.5 / 1e9
    got = physics.power_gw_per_um_from_radiance(0.1, band="M", range_km=50_000.0, emission_deg=60.0)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(0.1785, abs=1e-4)


def test_power_radiance_round_trip():
    rng = np.random.default_rng(1)
    radiance = rng.uniform(1e-4, 1.0, 50)
    range_km = rng.uniform(1e4, 4e5, 50)
    emission_deg = rng.uniform(0, 80, 50)
    for band in ("L", "M"):
        p = physics.power_gw_per_um_from_radiance(
            radiance, band=band, range_km=range_km, emission_deg=emission_deg
        )
        back = physics.radiance_from_power_gw_per_um(
            p, band=band, range_km=range_km, emission_deg=emission_deg
        )
        np.testing.assert_allclose(back, radiance, rtol=1e-12)


def test_source_model_consistent_with_power_relation():
    # a source filling exactly one pixel at nadir: pixel radiance = band radiance,
    # so the published relation must return the model's spectral power
    range_km, t = 20_000.0, 700.0
    pixel_km = range_km * jiram.IFOV_RAD
    for band in ("L", "M"):
        model = physics.spectral_power_gw_per_um(band, temperature_k=t, area_km2=pixel_km**2)
        obs = physics.power_gw_per_um_from_radiance(
            physics.band_radiance(band, t), band=band, range_km=range_km, emission_deg=0.0
        )
        assert model == pytest.approx(obs, rel=1e-12)


def test_lm_ratio_inversion_recovers_temperature():
    t = np.geomspace(200.0, 1500.0, 301)
    back = physics.temperature_from_lm_ratio(physics.lm_ratio(t))
    np.testing.assert_allclose(back, t, rtol=1e-3)
    assert np.max(np.abs(back / t - 1)) < 1e-5  # the grid is much finer than required
    assert np.all(np.diff(physics.lm_ratio(t)) > 0)


def test_lm_ratio_inversion_outside_range_is_nan():
    r = np.array([physics.lm_ratio(100.0), physics.lm_ratio(3000.0), 0.0, -1.0, np.nan])
    assert np.all(np.isnan(physics.temperature_from_lm_ratio(r)))
    assert physics.temperature_from_lm_ratio(physics.lm_ratio(500.0)) == pytest.approx(
        500.0, rel=1e-5
    )


def test_solar_constant_at_1au():
    d = physics.AU_KM
    lo, hi = 0.05, 1000.0
    pieces = np.geomspace(lo, hi, 12)
    total = sum(
        integrate.quad(lambda lam: physics.solar_spectral_irradiance(lam, sun_distance_km=d), a, b)[
            0
        ]
        for a, b in zip(pieces[:-1], pieces[1:], strict=True)
    )
    assert total == pytest.approx(1361.0, rel=0.02)


@pytest.mark.parametrize("band", ["L", "M"])
def test_solar_band_irradiance(band):
    d = 5.2 * physics.AU_KM
    lo = jiram.BAND_CENTER_UM[band] - jiram.DLAMBDA_UM[band] / 2
    hi = jiram.BAND_CENTER_UM[band] + jiram.DLAMBDA_UM[band] / 2
    expected = integrate.quad(
        lambda lam: physics.solar_spectral_irradiance(lam, sun_distance_km=d), lo, hi
    )[0]
    got = physics.solar_band_irradiance(band, sun_distance_km=d)
    assert got == pytest.approx(expected, rel=1e-10)
    # inverse-square scaling
    near = physics.solar_band_irradiance(band, sun_distance_km=d / 2)
    assert near == pytest.approx(4 * got, rel=1e-12)
