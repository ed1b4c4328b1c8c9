"""One frame, noise-free: the disc strips and the hotspots drawn on them, with their truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iovolc import physics
from iovolc.jiram import N_LINES_BAND, N_SAMPLES
from iovolc.sim import instrument as ins
from iovolc.sim.raycast import IoView
from iovolc.sim.render import (
    PAD,
    AlbedoPattern,
    SourceSet,
    add_stamp,
    centred_peak_fraction,
    equivalent_sigma,
    render_strip,
    source_covariance,
    source_stamp,
)

_POINT_SIGMA = equivalent_sigma(centred_peak_fraction(np.zeros((2, 2))))


@dataclass
class FrameImage:
    radiance: np.ndarray  # (lines, 432) noise-free band radiance
    disc_pixels: int
    lit_disc_pixels: int
    limb_in_frame: bool
    drawn: list[dict]


def band_to_j2000(i_to_j2000: np.ndarray, band: str) -> np.ndarray:
    return i_to_j2000 @ ins.band_to_jiram_i(band)


def render_frame(view: IoView, *, mode: str, i_to_j2000: np.ndarray, sources: SourceSet,
                 albedo: AlbedoPattern, irradiance: dict[str, float]) -> FrameImage:
    """Noise-free radiance image of a frame seen with the (true) attitude ``i_to_j2000``."""
    image = np.zeros((ins.mode_lines(mode), N_SAMPLES))
    proj = view.project(sources.points_bf) if len(sources.points_bf) else None
    disc = lit = 0
    limb = False
    drawn: list[dict] = []
    for band in ins.MODES[mode]:
        rot = band_to_j2000(i_to_j2000, band)
        strip = render_strip(view, band, rot, albedo=albedo, irradiance=irradiance[band])
        row0 = ins.band_row0(mode, band)
        image[row0:row0 + N_LINES_BAND] = strip.radiance
        disc += strip.disc_pixels
        lit += strip.lit_pixels
        limb |= strip.limb
        if proj is not None:
            drawn += _draw_sources(image[row0:row0 + N_LINES_BAND], view, proj, sources, band,
                                   rot, row0)
    return FrameImage(image, disc, lit, limb, drawn)


def _draw_sources(strip: np.ndarray, view: IoView, proj, sources: SourceSet, band: str,
                  rot: np.ndarray, row0: int) -> list[dict]:
    line, sample, front = ins.band_to_pixel(proj.direction @ rot)
    near = (proj.visible & front & (line > -PAD) & (line < N_LINES_BAND + PAD)
            & (sample > -PAD) & (sample < N_SAMPLES + PAD))
    idx = np.flatnonzero(near)
    if idx.size == 0:
        return []
    pix_km = proj.distance_km[idx] * ins.IFOV_RAD
    emission = proj.emission_deg[idx]
    area = sources.area_km2[idx]
    total = (physics.band_radiance(band, sources.temperature_k[idx]) * area
             * np.cos(np.radians(emission)) / pix_km**2)
    r_px = np.sqrt(area / np.pi) / pix_km
    tilt = np.zeros((idx.size, 2))
    resolved = r_px >= 0.4
    if resolved.any():
        k = idx[resolved]
        off = sources.points_bf[k] + 20.0 * sources.normals_bf[k]
        l2, s2, _ = ins.band_to_pixel(view.project(off).direction @ rot)
        tilt[resolved] = np.column_stack([l2 - line[k], s2 - sample[k]])
    rows = []
    for j, i in enumerate(idx):
        cov = source_covariance(r_px[j], emission[j], tilt[j])
        r0, s0, stamp = source_stamp(line[i], sample[i], total[j], cov)
        peak = add_stamp(strip, r0, s0, stamp)
        inside = -0.5 <= line[i] < N_LINES_BAND - 0.5 and -0.5 <= sample[i] < N_SAMPLES - 0.5
        if not inside:
            continue
        sigma = _POINT_SIGMA if r_px[j] < 0.01 else equivalent_sigma(centred_peak_fraction(cov))
        rows.append({
            "source_id": str(sources.source_id[i]), "ref_id": str(sources.ref_id[i]),
            "band": band, "line": float(line[i] + row0), "sample": float(sample[i]),
            "radiance_sum_w_m2_sr": float(total[j]), "peak_radiance_w_m2_sr": peak,
            "emission_deg": float(emission[j]), "range_km": float(proj.distance_km[i]),
            "pixel_scale_km": float(pix_km[j]), "psf_sigma_px": sigma,
        })
    return rows
