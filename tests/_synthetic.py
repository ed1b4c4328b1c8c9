"""Synthetic scenes shared by the speed tests and ``bench/kernels_simd.py``: images with
Gaussian sources, and frame states of Io on a synthetic M-band camera (no SPICE)."""

from __future__ import annotations

import numpy as np

from iovolc import jiram
from iovolc.geometry import FrameState


def _scene(rng, n0=60, n1=90, n_src=12):
    """Noise plus Gaussian sources of every width and brightness."""
    img = rng.normal(size=(n0, n1))
    yy, xx = np.mgrid[0:n0, 0:n1]
    for _ in range(rng.integers(0, n_src)):
        r, c = rng.uniform(-2, n0 + 2), rng.uniform(-2, n1 + 2)
        a, w = rng.uniform(2, 80), rng.uniform(0.5, 4)
        img += a * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * w * w))
    return img


def _state(range_km: float = 9000.0, line: float = 40.0, off: float = 1.0) -> FrameState:
    """Io ``range_km`` away, its centre ``off`` disc radii beside strip pixel (``line``,
    215.5) along the samples, on a synthetic M-band camera (no SPICE)."""
    cam = jiram.BandCamera(band="M", naif_id=-61420, frame="TEST", focal_length_mm=158.0,
                           pixel_size_mm=0.038, center_sample=215.5, center_line=63.5,
                           n_samples=432, n_lines=128, to_instrument=np.eye(3))
    radii = np.array([1829.4, 1819.4, 1815.7])
    r_px = np.tan(np.arcsin(radii.mean() / range_km)) / cam.ifov_rad
    # by default the disc's centre is off the boresight by its radius: the limb crosses
    io_pos = range_km * cam.directions(line, 215.5 + off * r_px)
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    w = 4.1e-5  # Io's spin (rad/s)
    drot = w * np.array([[-s, c, 0.0], [-c, -s, 0.0], [0.0, 0.0, 0.0]])
    return FrameState(et=0.0, lt0=range_km / 299792.458, obs_vel=np.array([12.0, -30.0, 4.0]),
                      io_pos=io_pos, io_vel=np.array([17.0, 2.0, 0.5]), rot=rot, drot=drot,
                      sun_bf=np.array([7e8, 2e8, 1e7]), sun_bf_rate=np.array([8e3, -3e4, 0.0]),
                      radii_km=radii, inst_to_j2000=np.eye(3), cameras={"M": cam},
                      spin_axis=np.array([1.0, 0.0, 0.0]))


def _tilted(state: FrameState) -> FrameState:
    """``state`` with a non-trivial attitude and band-frame tilt (every matrix term used)."""
    from dataclasses import replace

    from iovolc.geometry import axis_rotation

    cam = replace(state.camera("M"), to_instrument=axis_rotation([1.0, 0.0, 0.0], 0.0164))
    att = axis_rotation([0.3, -0.5, 0.8], 1.1)
    io_pos = att @ (cam.to_instrument @ (state.inst_to_j2000.T @ state.io_pos))
    return replace(state, cameras={"M": cam}, inst_to_j2000=att, io_pos=io_pos)


def _disc_scene(rng, shape, *, centre=None, radius_px=None):
    """A blurred disc's shading on zeros (anywhere: inside, across an edge or a corner,
    a few pixels or filling the strip, unless ``centre`` and ``radius_px`` are given) and
    a background of sky, noise and the disc."""
    from scipy.ndimage import gaussian_filter

    n0, n1 = shape
    ll, ss = np.mgrid[0:n0, 0:n1]
    c0, c1 = centre if centre is not None else (rng.uniform(-0.3, 1.3) * n0,
                                                 rng.uniform(-0.3, 1.3) * n1)
    rad = radius_px if radius_px is not None else rng.choice([1.5, 4.0, 15.0,
                                                              0.8 * max(n0, n1)])
    disc = np.clip(1.0 - np.hypot(ll - c0, ss - c1) / rad, 0.0, None) ** 0.5
    shading = gaussian_filter(disc, 0.7 if radius_px is not None else
                              rng.choice([0.0, 0.7, 1.5]), truncate=4.0)
    shading[shading < 1e-3] = 0.0  # the compiled blur's support ends
    bg = 3.0 + rng.normal(size=shape) * rng.choice([0.01, 1.0]) + 50.0 * shading
    return shading, bg
