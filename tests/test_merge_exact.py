"""``catalog.merge_detections`` on arrays (stop 33) gives the per-cluster loop's table exactly.

The loop it replaced is kept verbatim in ``tests/_merge_reference.py``. Random
detection tables hold what the loop's numpy calls treat specially: NaN and
infinite powers, SNRs, peaks and times, saturated-only and missing bands,
non-positive powers, tied times, clusters past numpy's pairwise-sum blocks,
shuffled and string indexes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _merge_reference import merge_detections_loop

from iovolc import segments
from iovolc.catalog import CLUSTER_COLUMNS, merge_detections
from iovolc.flags import Flag

_BITS = [int(f) for f in (Flag.SATURATED, Flag.NONLINEAR, Flag.NEAR_LIMB, Flag.UNREGISTERED,
                          Flag.FRAME_EDGE, Flag.POINTING_PASS, Flag.POINTING_CONSTELLATION)]


def _sprinkle(rng, x: np.ndarray, share: float, values) -> np.ndarray:
    x = x.copy()
    hit = rng.random(x.size) < share
    x[hit] = rng.choice(values, size=int(hit.sum()))
    return x


def _detections(rng: np.random.Generator, n_src: int, *, big: bool = False,
                sigma: bool = True, perijoves=(12, 30, 31, 57), per_cluster: float = 4.0,
                ) -> pd.DataFrame:
    """Detections of ``n_src`` sources over a few of ``perijoves``, a few km apart per
    source, ``per_cluster`` of them per source and perijove on average (``big``: the
    first source has 150-400 in each perijove)."""
    rows = []
    for s in range(n_src):
        lat, lon = rng.uniform(-80, 80), rng.uniform(0, 360)
        n_pj = int(rng.integers(1, min(4, len(perijoves)) + 1))
        for pj in rng.choice(perijoves, size=n_pj, replace=False):
            k = (int(rng.integers(150, 400)) if big and s == 0
                 else int(rng.geometric(1.0 / per_cluster)))
            frames = rng.integers(0, 6, size=k)
            rows.append(pd.DataFrame({
                "product_id": [f"JIR_IMG_RDR_{pj:03d}_{f:04d}" for f in frames],
                "perijove": pj,
                "et_mid": 1e8 + pj * 1e6 + frames * 30.0,
                "band": rng.choice(["M", "L"], size=k, p=[0.7, 0.3]),
                "lat_deg": lat + rng.normal(0, 0.02, k),
                "lon_west_deg": (lon + rng.normal(0, 0.02, k)) % 360.0,
                "emission_deg": rng.uniform(0, 89, k),
                "pixel_scale_km": rng.uniform(5, 60, k),
                "peak_radiance_w_m2_sr": rng.lognormal(0, 1, k),
                "power_gw_per_um": rng.lognormal(1, 1.5, k),
                "snr": rng.lognormal(2, 1, k),
                "flags": np.zeros(k, np.int64),
                "position_sigma_km": rng.uniform(1, 30, k),
            }))
    det = pd.concat(rows, ignore_index=True)
    n = len(det)
    det["utc"] = [f"2023-12-30T00:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(n)]
    det["power_gw_per_um"] = _sprinkle(rng, det["power_gw_per_um"].to_numpy(), 0.08,
                                       [np.nan, np.inf, 0.0, -1.5, 3.0])
    det["snr"] = _sprinkle(rng, det["snr"].to_numpy(), 0.05, [np.nan, np.inf, 0.5])
    det["peak_radiance_w_m2_sr"] = _sprinkle(rng, det["peak_radiance_w_m2_sr"].to_numpy(),
                                             0.1, [np.nan, np.inf])
    det["et_mid"] = _sprinkle(rng, det["et_mid"].to_numpy(), 0.02, [np.nan])
    det["emission_deg"] = _sprinkle(rng, det["emission_deg"].to_numpy(), 0.03, [np.nan, 80.0])
    flags = np.zeros(n, np.int64)
    for bit, share in zip(_BITS, (0.2, 0.05, 0.6, 0.5, 0.5, 0.7, 0.3), strict=True):
        flags |= np.where(rng.random(n) < share, bit, 0)
    det["flags"] = flags
    if not sigma:
        det = det.drop(columns="position_sigma_km")
    return det.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))  # shuffled rows


def _same(new: pd.DataFrame, old: pd.DataFrame) -> None:
    assert list(new.columns) == list(CLUSTER_COLUMNS)
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    for col in new.columns:  # bit for bit (assert_frame_equal takes -0.0 == 0.0)
        if new[col].dtype.kind == "f":
            assert np.array_equal(new[col].to_numpy().view(np.int64),
                                  old[col].to_numpy().view(np.int64)), col


@pytest.mark.parametrize("seed", range(16))
def test_merge_on_arrays_is_the_per_cluster_loop(seed):
    rng = np.random.default_rng(seed)
    det = _detections(rng, n_src=int(rng.integers(5, 60)), big=seed % 4 == 0,
                      sigma=seed % 3 != 0)
    if seed % 5 == 1:
        det.index = [f"d{i}" for i in rng.permutation(len(det))]
    _same(merge_detections(det), merge_detections_loop(det))


def test_saturated_only_and_missing_bands_as_the_loop():
    rng = np.random.default_rng(99)
    det = _detections(rng, n_src=30)
    det["flags"] = np.where(det["band"] == "M", int(Flag.SATURATED), 0)
    det.loc[det.index[::7], "power_gw_per_um"] = np.nan
    det.loc[det.index[::5], "snr"] = np.inf
    _same(merge_detections(det), merge_detections_loop(det))
    det["band"] = "L"
    _same(merge_detections(det), merge_detections_loop(det))


def test_a_cluster_of_one_perijove_one_detection():
    rng = np.random.default_rng(3)
    det = _detections(rng, n_src=1).iloc[:1]
    _same(merge_detections(det), merge_detections_loop(det))


def test_group_median_is_numpys():
    rng = np.random.default_rng(5)
    for _ in range(50):
        counts = rng.integers(0, 12, size=20)
        group = np.repeat(np.arange(20), counts)
        values = rng.choice([1.0, 2.0, 2.0, 3.5, -0.25], size=group.size) * rng.lognormal(
            0, 1, group.size)
        perm = rng.permutation(group.size)
        got = segments.group_median(values[perm], group[perm], 20)
        want = np.array([np.median(values[group == g]) if counts[g] else np.nan
                         for g in range(20)])
        assert np.array_equal(got, want, equal_nan=True)


def test_missing_product_ids_utcs_and_numpy_labels_as_the_loop():
    """Found by a second reader (stop 33): a missing product id is one frame of its own,
    an object index's numpy labels become Python ones, a cluster whose times are all
    missing keeps the loop's column type."""
    rng = np.random.default_rng(11)
    det = _detections(rng, n_src=6, perijoves=(30,))
    det.loc[det.index[:3], "product_id"] = None
    det.loc[det.index[-2:], "product_id"] = np.nan
    _same(merge_detections(det), merge_detections_loop(det))
    det.index = pd.Index([np.int64(i) for i in range(len(det))], dtype=object)
    new = merge_detections(det)
    _same(new, merge_detections_loop(det))
    assert all(type(v) is int for ids in new["detection_indices"] for v in ids)
    det["utc"] = None
    _same(merge_detections(det), merge_detections_loop(det))
