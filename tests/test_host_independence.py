"""The same frame gives the same bits on any host: no tie is left to an unstable sort.

numpy's default sort (``kind="quicksort"``) is a SIMD sort on AVX2 and AVX-512
hosts (x86-simd-sort) and a scalar introsort elsewhere; neither is stable, and
they order equal values differently. Calibrated JIRAM radiance is quantised
(whole DN less a dark frame, times a gain), so equal values are common. Stop 30
found two places where their order changed an output: the radiation-hit noise
model's quantile bins of the local level (``hits._NoiseModel.fit``) and the
brightest pixel of a labelled plateau (``imaging.brightest_of_labels``, which
deferred to scipy's ``maximum_position`` on ties). Here each runs in this
process and again in a child process with numpy's SIMD dispatch turned off
(``NPY_DISABLE_CPU_FEATURES``: every dispatch target numpy was built with),
which stands in for a host without that SIMD; the bits must be the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from _speed_reference import brightest_raster_first
from numpy._core import _multiarray_umath

from iovolc import calibrate, hits, imaging, jiram

_CHILD = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from iovolc import hits, imaging
    data = np.load(sys.argv[1])
    x, plateau, lab = data["x"], data["plateau"], data["lab"]
    lv = (x - hits._ring_mean_excess(x))[::3, ::3].ravel()
    pr, ps = imaging.brightest_of_labels(plateau, lab, int(lab.max()))
    print(json.dumps({
        "sigma": hashlib.sha256(hits.noise_sigma_map(x).tobytes()).hexdigest(),
        "peaks": [pr.tolist(), ps.tolist()],
        "argsort": hashlib.sha256(np.argsort(lv).tobytes()).hexdigest(),
    }))
""")


def _quantised_frame(rng: np.random.Generator) -> np.ndarray:
    """A dark-sky M-band frame with a few sources, through the real calibration: DN are
    whole numbers, so the radiance (and the local level) has many equal values."""
    bands = ("M",)
    dark = jiram.load_dark_dn(2)[jiram.dark_rows(bands)]
    sky = rng.poisson(3.0, dark.shape).astype(float)
    yy, xx = np.mgrid[:dark.shape[0], :dark.shape[1]]
    for y, x, amp in [(40, 100, 400.0), (80, 300, 2000.0), (60, 200, 80.0)]:
        sky += amp * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 0.9**2))
    dn = np.clip(np.rint(dark + sky), 0, 16383)
    return calibrate.edr_to_radiance(dn, bands=bands, exposure_s=0.002).astype(np.float64)


def _plateaus(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """30 labelled 3x3 windows whose largest value is shared by two or more pixels."""
    values = np.full((128, 432), -np.inf)
    lab = np.zeros((128, 432), np.int64)
    for k in range(30):
        r, c = 5 + (k * 37) % 115, 10 + 13 * k
        v = np.round(rng.normal(10, 1, (3, 3)) * 2) / 2
        v[1, 1] = v[0, 2] = v.max()
        lab[r:r + 3, c:c + 3] = k + 1
        values[r:r + 3, c:c + 3] = v
    return values, lab


def test_noise_model_and_peaks_do_not_depend_on_the_hosts_sort(tmp_path):
    rng = np.random.default_rng(1)
    x = _quantised_frame(rng)
    plateau, lab = _plateaus(rng)
    lv = (x - hits._ring_mean_excess(x))[::3, ::3].ravel()
    assert np.unique(lv).size < 0.5 * lv.size  # the levels do tie

    np.savez(tmp_path / "in.npz", x=x, plateau=plateau, lab=lab)
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(_multiarray_umath.__cpu_dispatch__))
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "in.npz")], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    child = json.loads(done.stdout.strip().splitlines()[-1])

    pr, ps = imaging.brightest_of_labels(plateau, lab, 30)
    assert child["peaks"] == [pr.tolist(), ps.tolist()]
    assert child["sigma"] == hashlib.sha256(hits.noise_sigma_map(x).tobytes()).hexdigest()
    # the first in raster order among equal values
    assert list(zip(pr.tolist(), ps.tolist(), strict=True)) == brightest_raster_first(
        plateau, lab, 30)
    # on x86 with AVX2 or more numpy's argsort is x86-simd-sort (measured on AVX2 here):
    # the two processes' default sorts really order these ties differently
    if _multiarray_umath.__cpu_features__.get("AVX2", False):
        assert child["argsort"] != hashlib.sha256(np.argsort(lv).tobytes()).hexdigest()
