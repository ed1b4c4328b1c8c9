"""Quality and provenance flags of hotspot detections and catalog rows.

One :class:`Flag` bitmask is carried by every detection (extraction stage)
and every catalog row (:mod:`iovolc.catalog`); the values are part of the
published catalog format and must never be renumbered. Each member has its
own docstring (``Flag.SATURATED.__doc__``), used for the catalog files'
metadata and ``docs/catalog_schema.md``.
"""

from __future__ import annotations

import enum

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Flag", "CONFIDENT_SNR", "HIGH_EMISSION_DEG", "flag_names", "flag_descriptions"]

#: peak signal-to-noise ratio at and above which a detection is "confident"
CONFIDENT_SNR = 8.0
#: emission angle (deg) above which the radiance -> power relation's 1/cos(e) is unreliable
HIGH_EMISSION_DEG = 75.0


class Flag(enum.IntFlag):
    """Bitmask of detection / catalog-row flags (combine with ``|``, test with ``&``)."""

    def __new__(cls, value: int, doc: str = "") -> Flag:
        # members are ``NAME = value, "docstring"``; composite pseudo-members
        # (e.g. SATURATED|NEAR_LIMB) are built by enum with ``value`` only.
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.__doc__ = doc
        return obj

    # Not iterable, so that pandas treats a flag as a scalar: ``series & Flag.SATURATED``
    # works (pandas refuses logical ops with list-likes). Iterate the class
    # (``for m in Flag``) or use :func:`flag_names` instead.
    __iter__ = None

    SATURATED = (
        1,
        "At least one pixel of the source reached the detector's saturation level: "
        "its radiance (and so its power) is underestimated.",
    )
    NEAR_LIMB = (
        2,
        "The source lies within a few pixels of Io's limb in the frame: its "
        "position and background are less certain.",
    )
    HIGH_EMISSION = (
        4,
        f"Emission angle above {HIGH_EMISSION_DEG:g} deg: the 1/cos(emission) of the "
        "radiance -> power relation amplifies errors (catalog rows: all detections).",
    )
    LOW_CONFIDENCE = (
        8,
        f"Peak SNR below the confident level ({CONFIDENT_SNR:g}) or the source was "
        "seen in one frame only.",
    )
    UNREGISTERED = (
        16,
        "No pointing solution for the frame (no frame of its pass registered on Io's "
        "limb): the position carries the raw pointing error (up to ~10 deg along the spin). "
        "Never catalogued.",
    )
    FRAME_EDGE = (
        32,
        "The source touches the frame edge: part of its flux may be outside the frame.",
    )
    T_FROM_LM = (
        64,
        "Temperature measured from the L/M band-radiance ratio (single-temperature blackbody).",
    )
    T_FROM_REFERENCE = (
        128,
        "Temperature taken from the matched Davies et al. (2024) source (no usable L/M ratio); "
        "the power interval spans the plausible temperature range.",
    )
    T_ASSUMED = (
        256,
        "No measured nor reference temperature: the default temperature "
        "(catalog.DEFAULT_TEMPERATURE_K) was assumed; area and total power are model-dependent.",
    )
    POWER_LOWER_LIMIT = (
        512,
        "Every detection the power is based on is saturated or non-linear: the spectral and "
        "total powers are lower limits.",
    )
    NEW_SOURCE = (
        1024,
        "No Davies et al. (2024) source within the matching tolerance: a new (uncatalogued) source.",
    )
    NONLINEAR = (
        2048,
        "The raw peak exceeds the detector's linear range (~10,000 DN; Mura et al. 2024): "
        "radiance and power are lower bounds.",
    )
    POINTING_PASS = (
        4096,
        "The frame's pointing comes from its pass's common offset (it could not register "
        "alone): position uncertainty includes the pass scatter.",
    )
    POINTING_CONSTELLATION = (
        8192,
        "The frame's pointing was refined by matching its hotspots to hotspots located in "
        "limb-registered frames of the same pass (typically a night-side frame).",
    )
    TRANSIENT = (
        16384,
        "Seen in one frame only although other frames of its sequence (30 s apart) covered "
        "the spot in the same band: most likely a radiation hit. Never catalogued.",
    )


def flag_names(flags: int | ArrayLike) -> str | np.ndarray:
    """Human-readable flag names, e.g. ``"SATURATED|T_FROM_LM"`` (``""`` for 0).

    Scalar in -> str out; array in -> object array of str. Names are in bit
    order; bits that are not :class:`Flag` members are ignored.
    """
    arr = np.asarray(flags)
    if arr.ndim == 0:
        value = int(arr)
        return "|".join(m.name for m in Flag if value & m.value)
    uniq, inverse = np.unique(arr.astype(np.int64), return_inverse=True)
    names = np.array([flag_names(int(v)) for v in uniq] or [""], dtype=object)
    return names[inverse.reshape(arr.shape)] if uniq.size else np.empty(arr.shape, dtype=object)


def flag_descriptions() -> dict[str, tuple[int, str]]:
    """``{name: (bit value, description)}`` for every :class:`Flag` member, in bit order."""
    return {m.name: (m.value, m.__doc__) for m in Flag}
