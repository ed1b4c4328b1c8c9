"""Ingestion policy: which products to land, and one quarantine boundary per product.

* :func:`plan_discovery` -- every volume's INDEX read row by row
  (:func:`iovolc.pds3_index.read_index`); bad rows and duplicate product ids
  become problems (the first listed id is kept: volumes in orbit order, rows in
  index order), never a lost volume.
* :func:`land_product` -- label, image, values, time, perijove, orbit,
  kernels and the landing itself, inside one quarantine-or-continue boundary:
  any failure quarantines this product with a one-line reason naming the
  product, the keyword or file, and the value, and the caller goes on.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovolc.calibrate import MAX_INVALID_FRACTION, invalid_values
from iovolc.kernels import CorruptKernelError, MissingKernelError, resolve_kernels
from iovolc.pds3 import ProductError, is_inside, is_plain_token
from iovolc.pds3_index import list_volumes, read_index, volume_orbit
from iovolc.reader import read_jiram_product
from iovolc.store import Store, checksum_bytes, object_key, quarantine

#: a product whose perijove (from START_TIME) is this many orbits from its volume's is refused
MAX_ORBIT_DISTANCE = 1


@dataclass(frozen=True)
class DiscoveryPlan:
    #: volume URL -> {"volume_id", "products": [(product_id, relative label path)]}
    volumes: dict[str, dict]
    #: {"name": quarantine name, "reason": one line}
    problems: list[dict] = field(default_factory=list)


def plan_discovery(archive_url: str, *, fs=None, perijoves: list[int] | None = None
                   ) -> DiscoveryPlan:
    """Products listed by the archive's volumes (see the module docstring).

    Raises :class:`ProductError` (one line) if the archive root does not exist.
    """
    volumes: dict[str, dict] = {}
    problems: list[dict] = []
    first_seen: dict[str, str] = {}
    for vol in list_volumes(archive_url, fs=fs):
        vid = posixpath.basename(vol.rstrip("/"))
        if perijoves is not None and volume_orbit(vid) not in perijoves:
            continue
        try:
            idx = read_index(vol, fs=fs)
        except ProductError as exc:
            problems.append({"name": vid, "reason": str(exc)})
            continue
        for p in idx.problems:
            pid = p.get("product_id") or ""
            name = pid if pid and is_plain_token(pid) else f"{vid}-row{p['row']:05d}"
            problems.append({"name": name, "reason": f"{vid} INDEX.TAB: {p['reason']}"})
        products = []
        for _, row in idx.rows.iterrows():
            pid = str(row.get("product_id", "")).strip() or \
                posixpath.splitext(posixpath.basename(str(row["relative_path"])))[0]
            where = f"{vid}/{row['relative_path']}"
            if pid in first_seen:
                problems.append({"name": f"{pid}-dup-{checksum_bytes(where.encode())[:8]}",
                                 "reason": f"{pid}: duplicate PRODUCT_ID at {where}; the first "
                                           f"listed ({first_seen[pid]}) is kept"})
                continue
            first_seen[pid] = where
            products.append((pid, str(row["relative_path"])))
        volumes[vol] = {"volume_id": vid, "products": products}
    return DiscoveryPlan(volumes, problems)


def land_product(store: Store, *, fs, archive_url: str, volume_url: str, volume_id: str,
                 product_id: str, relative_path: str, kernel_root: str, kfs, cache_dir: Path,
                 kernels_landed: set[str]) -> dict[str, Any]:
    """Land one product (label, image, checksums, kernels) or quarantine it.

    Returns the manifest row of the landed product, or ``{"product_id",
    "reason", "record", "quarantined": True}``.
    """
    label_url = volume_url.rstrip("/") + "/" + relative_path
    root = fs._strip_protocol(archive_url)
    try:
        prod = read_jiram_product(label_url, fs=fs, root=root)
        if prod.product_id != product_id:
            raise ProductError(product_id, f"INDEX.TAB says PRODUCT_ID {product_id} but the label "
                                           f"says {prod.product_id}")
        bad, why = invalid_values(prod.image, product_type=prod.product_type,
                                  exposure_s=prod.exposure_s)
        if bad.mean() > MAX_INVALID_FRACTION:
            raise ProductError(product_id, f"image: {why} -- more than "
                                           f"{MAX_INVALID_FRACTION:.0%} of the frame")
        pj, note = _perijove(prod, volume_id)
        names = resolve_kernels(prod.spice_file_names, kernel_root=kernel_root,
                                cache_dir=cache_dir, fs=kfs) if prod.spice_file_names else []
        if not names:
            raise ProductError(product_id, "SPICE_FILE_NAME lists no kernels")
        img_rel = posixpath.join(posixpath.dirname(relative_path), prod.image_name)
        img_path = posixpath.normpath(fs._strip_protocol(volume_url.rstrip("/") + "/" + img_rel))
        if not is_inside(img_path, root):
            raise ProductError(product_id, f"^IMAGE {img_rel!r} leads outside the archive root")
        files = {relative_path: fs.cat_file(fs._strip_protocol(label_url))}
        files[img_rel] = fs.cat_file(img_path)
    except (ProductError, MissingKernelError, CorruptKernelError, ValueError, OSError) as exc:
        reason = str(exc) if str(exc).startswith(product_id) else f"{product_id}: {exc}"
        reason = reason.splitlines()[0][:500]
        payload = None
        label_path = posixpath.normpath(fs._strip_protocol(label_url))
        if is_inside(label_path, root):
            try:
                payload = fs.cat_file(label_path)
            except OSError:
                payload = None
        name = product_id if is_plain_token(product_id) else \
            f"{volume_id}-{checksum_bytes(product_id.encode())[:12]}"
        qkey = quarantine(store, stage="ingest", name=name, reason=reason, payload_bytes=payload,
                          filename=posixpath.basename(relative_path) or "label.lbl")
        return {"product_id": product_id, "reason": reason, "record": qkey, "quarantined": True}
    for path in names:
        if path.name in kernels_landed:
            continue
        key = object_key("kernel", name=path.name)
        if not store.exists(key):
            store.put_file(key, path)
        kernels_landed.add(path.name)
    for frel, data in files.items():
        store.put_bytes(object_key("raw", volume_id=volume_id, relative_path=frel), data)
        store.put_bytes(object_key("raw_checksum", volume_id=volume_id, relative_path=frel),
                        checksum_bytes(data).encode())
    return {
        "product_id": prod.product_id, "volume_id": volume_id,
        "label_key": object_key("raw", volume_id=volume_id, relative_path=relative_path),
        "image_key": object_key("raw", volume_id=volume_id, relative_path=img_rel),
        "perijove": pj, "orbit_number": prod.orbit_number, "perijove_note": note,
        "mode": prod.mode, "bands": "".join(prod.bands), "exposure_s": prod.exposure_s,
        "et_mid": prod.et_mid, "product_type": prod.product_type,
        "target_name": prod.target_name, "sequence_number": prod.sequence_number,
        "kernels": [p.name for p in names],
    }


def _perijove(prod, volume_id: str) -> tuple[int, str]:
    """Perijove from START_TIME, checked against the label's orbit and the volume's."""
    from iovolc.pipeline import perijove_check

    try:
        pj, note = perijove_check(prod)
    except ValueError:
        raise ProductError(prod.product_id, f"START_TIME {prod.start_time_utc} is outside the "
                                            "perijove table (PJ0 2016 .. the last planned "
                                            "perijove)") from None
    vol_orbit = volume_orbit(volume_id)
    if abs(pj - vol_orbit) > MAX_ORBIT_DISTANCE:
        raise ProductError(prod.product_id, f"START_TIME {prod.start_time_utc} falls in orbit "
                                            f"{pj}, far from volume {volume_id} (orbit "
                                            f"{vol_orbit})")
    if pj != vol_orbit:
        note = "; ".join(filter(None, [note, f"START_TIME falls in orbit {pj}, volume "
                                             f"{volume_id} is orbit {vol_orbit}"]))
    return pj, note
