"""Ingestion policy: which products to land, and one quarantine boundary per product.

* :func:`plan_discovery` -- every volume's INDEX read row by row
  (:func:`iovolc.pds3_index.read_index`); bad rows and duplicate product ids
  become problems (the first listed id is kept: volumes in orbit order, rows in
  index order), never a lost volume; a volume whose INDEX cannot be read at
  all is one problem, the other volumes go on.
* :func:`land_products` (a batch) / :func:`land_product` (one) -- label,
  image, values, time, perijove, orbit, kernels and the landing itself, inside
  one quarantine-or-continue boundary per product: any failure quarantines
  this product with a one-line reason that starts with the product id and
  names the keyword or file and the value, and the caller goes on. Only
  transient I/O errors (``ConnectionError``, ``TimeoutError``) escape, so the
  orchestration retries them instead of quarantining a good product.
* The kernels a product names are verified by SPICE in a check process of
  their own before anything is landed (:class:`iovolc.kernels.KernelVerifier`:
  once per kernel content, one run for a whole batch), and the product's time must
  be covered by its CKs (JUNO_SPACECRAFT) and SPKs (Juno, Io).
* Nothing outside the product's volume is opened: the label, its image and
  the quarantine copy are confined to the volume (links resolved on a local
  disk); what is landed is exactly the bytes that were checked.

Every reason is built by :func:`_reason`; the forms are::

    <product id>: <label file>: <what the reader refused>
    <product id>: SPICE_FILE_NAME <kernel>: <why>
    <product id>: START_TIME <utc> is not covered by CK <name> for JUNO_SPACECRAFT ...
    <volume> INDEX.TAB row <n>: <column> <value> ...
"""

from __future__ import annotations

import copy
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iovolc.calibrate import MAX_INVALID_FRACTION, invalid_values
from iovolc.kernels import (
    CorruptKernelError,
    KernelCoverageError,
    KernelHashes,
    KernelVerifier,
    MissingKernelError,
    replace_atomically,
    resolve_kernels,
)
from iovolc.pds3 import (
    ProductError,
    confine,
    fs_path,
    is_inside,
    is_plain_token,
    one_line,
    read_capped,
)
from iovolc.pds3_index import list_volumes, read_index, volume_orbit
from iovolc.reader import read_jiram_product
from iovolc.store import Store, checksum_bytes, object_key, quarantine

#: a product whose perijove (from START_TIME) is this many orbits from its volume's is refused
MAX_ORBIT_DISTANCE = 1
#: errors that are not the product's fault: re-raised for the orchestration to retry
TRANSIENT_ERRORS = (ConnectionError, TimeoutError)
#: the largest label copied into the quarantine as evidence
_MAX_EVIDENCE_BYTES = 1 << 20


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
    names: set[str] = set()
    first_seen: dict[str, str] = {}

    def problem(name: str, reason: str) -> None:
        if name in names:  # one record per problem, never overwritten by the next
            name = f"{name}-{checksum_bytes(reason.encode())[:8]}"
        names.add(name)
        problems.append({"name": name, "reason": one_line(reason)})

    for vol in list_volumes(archive_url, fs=fs):
        vid = posixpath.basename(vol.rstrip("/"))
        if perijoves is not None and volume_orbit(vid) not in perijoves:
            continue
        try:
            idx = read_index(vol, fs=fs)
        except TRANSIENT_ERRORS:
            raise
        except ProductError as exc:
            problem(vid, str(exc) if str(exc).startswith(vid) else f"{vid}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a volume we cannot read is its own problem
            problem(vid, f"{vid} INDEX: cannot be read ({type(exc).__name__}: {exc})")
            continue
        for p in idx.problems:
            pid = p.get("product_id") or ""
            where = f"{vid} INDEX.TAB" + (f" row {p['row']}" if p["row"] else "")
            name = pid if pid and is_plain_token(pid) else \
                f"{vid}-row{p['row']:05d}" if p["row"] else f"{vid}-index"
            problem(name, f"{where}: {p['reason']}"
                          + (f" (PRODUCT_ID {pid})" if pid and is_plain_token(pid) else ""))
        products = []
        for _, row in idx.rows.iterrows():
            rel = str(row["relative_path"])
            pid = str(row.get("product_id", "")).strip() or \
                posixpath.splitext(posixpath.basename(rel))[0]
            where = f"{vid}/{rel}"
            if pid in first_seen:
                problem(f"{pid}-dup-{checksum_bytes(where.encode())[:8]}",
                        f"{pid}: duplicate PRODUCT_ID at {where} (INDEX.TAB row {row['_row']}); "
                        f"the first listed ({first_seen[pid]}) is kept")
                continue
            first_seen[pid] = where
            products.append((pid, rel))
        volumes[vol] = {"volume_id": vid, "products": products}
    return DiscoveryPlan(volumes, problems)


# --- landing -----------------------------------------------------------------------


@dataclass
class _Staged:
    """A product that passed the label, image and time checks, waiting for its kernels
    (its pixels are not kept: only the bytes to land and the manifest row)."""

    product_id: str
    relative_path: str
    et_mid: float
    start_time_utc: str
    kernels: list[Path]
    #: (store key, checksum key, bytes, their sha256): label, image
    files: list[tuple[str, str, bytes, str]]
    row: dict[str, Any]  # the manifest row, without the kernels


def land_product(store: Store, *, fs, archive_url: str, volume_url: str, volume_id: str,
                 product_id: str, relative_path: str, kernel_root: str, kfs, cache_dir: Path,
                 kernels_landed: set[str], verifier: KernelVerifier | None = None
                 ) -> dict[str, Any]:
    """Land one product (label, image, checksums, kernels) or quarantine it.

    Returns the manifest row of the landed product, or ``{"product_id",
    "reason", "record", "quarantined": True}``. For many products prefer
    :func:`land_products` (one SPICE verification process for all of them).
    """
    return land_products(store, fs=fs, archive_url=archive_url, volume_url=volume_url,
                         volume_id=volume_id, products=[(product_id, relative_path)],
                         kernel_root=kernel_root, kfs=kfs, cache_dir=cache_dir,
                         kernels_landed=kernels_landed, verifier=verifier)[0]


def land_products(store: Store, *, fs, archive_url: str, volume_url: str, volume_id: str,
                  products: list[tuple[str, str]], kernel_root: str, kfs, cache_dir: Path,
                  kernels_landed: set[str] | None = None,
                  verifier: KernelVerifier | None = None) -> list[dict[str, Any]]:
    """Land a batch of one volume's products, each in its own quarantine boundary.

    Three passes: every product read and checked (label, image values,
    perijove, kernels fetched); all the kernels they name verified by SPICE in
    one run of the check process (nothing for kernels verified before); then each
    product's time checked against its kernels' coverage and the good ones
    landed. Returns one row per product, in order (see :func:`land_product`).
    """
    kernels_landed = set() if kernels_landed is None else kernels_landed
    verifier = verifier or KernelVerifier(cache_dir)
    _, vol_path = fs_path(volume_url, fs)
    vol_path = vol_path.rstrip("/")
    if not is_inside(vol_path, fs_path(archive_url, fs)[1]):
        raise ValueError(f"volume {volume_url} is not under the archive root {archive_url}")
    out: list[dict[str, Any] | None] = [None] * len(products)
    staged: list[tuple[int, _Staged]] = []
    resolved: dict[tuple[str, ...], Any] = {}  # one kernel lookup per kernel list and batch
    for i, (pid, rel) in enumerate(products):
        evidence: dict[str, bytes] = {}
        try:
            staged.append((i, _examine(fs, vol_path, volume_id, pid, rel, kernel_root, kfs,
                                       cache_dir, evidence, resolved)))
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary: this product only
            out[i] = _quarantine(store, fs, vol_path, volume_id, pid, rel, exc, evidence)
    # one process for every kernel not verified yet; its exceptions are the machine's
    # (no process could start), not a product's: they fail the batch, to be retried
    hashes = KernelHashes()  # each kernel's sha256 taken once in the batch (stop 29)
    verifier.prepare([s.kernels for _, s in staged], hashes=hashes)
    stored: dict[str, str] = {}  # store key -> sha256 of what the store holds ("" = nothing)
    for i, s in staged:
        try:
            verifier.check(s.kernels, s.et_mid, when=f"START_TIME {s.start_time_utc}",
                           hashes=hashes)
            _same_as_stored(store, s, stored, Path(cache_dir), hashes)
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001
            evidence = {posixpath.basename(s.relative_path): s.files[0][2]}
            out[i] = _quarantine(store, fs, vol_path, volume_id, s.product_id, s.relative_path,
                                 exc, evidence)
            continue
        out[i] = _land(store, s, kernels_landed, stored, hashes)
    return [r for r in out if r is not None]


def _stored_sha256(store: Store, key: str, cache_dir: Path) -> str:
    """sha256 of a stored kernel ("" if absent), hashed once per stored version: the result
    is kept in the local cache under the object's size and modification stamp."""
    try:
        info = store.fs.info(store.path(key))
    except FileNotFoundError:
        return ""
    stamp = "|".join(str(info.get(k, "")) for k in ("size", "mtime", "LastModified", "ETag"))
    memo = Path(cache_dir) / "store-sha256" / \
        f"{checksum_bytes(f'{store.url}|{key}'.encode())[:32]}.json"
    try:
        known = json.loads(memo.read_text())
        if known.get("stamp") == stamp:
            return str(known["sha256"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    sha = store.sha256(key)
    replace_atomically(memo, lambda fh: json.dump({"stamp": stamp, "sha256": sha}, fh),
                       mode="w")
    return sha


def _same_as_stored(store: Store, s: _Staged, stored: dict[str, str], cache_dir: Path,
                    hashes: KernelHashes) -> None:
    """Refuse a product whose kernel or files differ from what the store holds by that name.

    Kernels are immutable by name (NAIF versions them in the name): a product naming
    ``x.bc`` whose bytes differ from the ``x.bc`` other products were processed with
    would be calibrated with the other one. A product whose label or image differs from
    the copy landed before (re-ingested with ``force``) is a re-issue under an old id.
    """
    for path in s.kernels:
        key = object_key("kernel", name=path.name)
        if key not in stored:
            stored[key] = _stored_sha256(store, key, cache_dir)
        mine = hashes[path]
        if stored[key] and stored[key] != mine:
            raise ProductError(s.product_id, (
                f"SPICE_FILE_NAME {path.name}: the kernel tree's file (sha256 {mine[:12]}) "
                f"differs from the {path.name} already landed (sha256 {stored[key][:12]}); a "
                "changed kernel needs a new name"))
    for key, sum_key, _, mine in s.files:
        if key not in stored:  # the landed sha256 is beside it; hashed only if missing
            stored[key] = "" if not store.exists(key) else \
                store.get_bytes(sum_key).decode().strip() if store.exists(sum_key) else \
                store.sha256(key)
        if stored[key] and stored[key] != mine:
            raise ProductError(s.product_id, (
                f"{key.rsplit('/', 1)[-1]} (sha256 {mine[:12]}) differs from the copy landed "
                f"before (sha256 {stored[key][:12]}); a re-issued product needs a new "
                "PRODUCT_ID version"))


def _examine(fs, vol_path: str, volume_id: str, product_id: str, relative_path: str,
             kernel_root: str, kfs, cache_dir: Path, evidence: dict[str, bytes],
             resolved: dict | None = None) -> _Staged:
    """Every check that needs no SPICE; raises on the first problem. ``resolved``: the
    kernel lookups of the batch so far (a kernel list found, or why it was not)."""
    label_path = posixpath.normpath(posixpath.join(vol_path, relative_path))
    prod = read_jiram_product(label_path, fs=fs, root=vol_path, keep_bytes=True)
    raw = dict(prod.raw_files or {})
    evidence[posixpath.basename(relative_path)] = next(iter(raw.values()), b"")
    if prod.product_id != product_id:
        raise ProductError(product_id, f"INDEX.TAB says PRODUCT_ID {product_id} but the label "
                                       f"says PRODUCT_ID {prod.product_id}")
    bad, why = invalid_values(prod.image, product_type=prod.product_type,
                              exposure_s=prod.exposure_s)
    if bad.mean() > MAX_INVALID_FRACTION:
        raise ProductError(product_id, f"{prod.image_name}: {why} -- more than "
                                       f"{MAX_INVALID_FRACTION:.0%} of the frame")
    pj, note = _perijove(prod, volume_id)
    if not prod.spice_file_names:
        raise ProductError(product_id, "SPICE_FILE_NAME lists no kernels")
    names = tuple(prod.spice_file_names)
    resolved = {} if resolved is None else resolved
    if names not in resolved:
        try:
            resolved[names] = resolve_kernels(names, kernel_root=kernel_root,
                                              cache_dir=cache_dir, fs=kfs)
        except CorruptKernelError:
            raise  # a bad fetch may not repeat: this product's only
        except (MissingKernelError, ValueError) as exc:
            # the same answer for every product naming these kernels (a kernel absent
            # from the source and the cache, a name that is not a kernel's); anything
            # else (a read error, a bad fetch) is this product's, tried again by the next
            resolved[names] = exc
    if isinstance(resolved[names], Exception):
        raise copy.copy(resolved[names]).with_traceback(None)
    kernels = list(resolved[names])
    img_rel = posixpath.join(posixpath.dirname(relative_path), prod.image_name)
    label_bytes = next(iter(raw.values()))  # the label comes first
    files = []
    for rel, data in ((relative_path, label_bytes),
                      (img_rel, raw.get(prod.image_name, label_bytes))):
        files.append((object_key("raw", volume_id=volume_id, relative_path=rel),
                      object_key("raw_checksum", volume_id=volume_id, relative_path=rel), data,
                      checksum_bytes(data)))
    row = {
        "product_id": prod.product_id, "volume_id": volume_id,
        "label_key": files[0][0], "image_key": files[1][0],
        "perijove": pj, "orbit_number": prod.orbit_number, "perijove_note": note,
        "mode": prod.mode, "bands": "".join(prod.bands), "exposure_s": prod.exposure_s,
        "et_mid": prod.et_mid, "product_type": prod.product_type,
        "target_name": prod.target_name, "sequence_number": prod.sequence_number,
    }
    return _Staged(product_id, relative_path, prod.et_mid, prod.start_time_utc, kernels, files,
                   row)


def _land(store: Store, s: _Staged, kernels_landed: set[str], stored: dict[str, str],
          hashes: KernelHashes) -> dict[str, Any]:
    """Kernels, label and image (exactly the bytes checked) with their sha256; the manifest row."""
    for path in s.kernels:
        key = object_key("kernel", name=path.name)
        if path.name not in kernels_landed and not stored.get(key):
            store.put_file(key, path)
        kernels_landed.add(path.name)
        stored[key] = hashes[path]
    for key, sum_key, data, digest in s.files:
        store.put_bytes(key, data)
        store.put_bytes(sum_key, digest.encode())
        stored[key] = digest
    return {**s.row, "kernels": [p.name for p in s.kernels],
            "kernel_sha256": {p.name: hashes[p] for p in s.kernels}}


def _reason(product_id: str, exc: BaseException) -> str:
    """One line: the product id first, then the keyword or file and the value."""
    if isinstance(exc, ProductError):
        text = str(exc) if exc.product_id == product_id else f"{product_id}: {exc}"
    elif isinstance(exc, MissingKernelError):
        text = f"{product_id}: SPICE_FILE_NAME {exc.kernel_name}: {exc}"
    elif isinstance(exc, CorruptKernelError):
        text = f"{product_id}: SPICE_FILE_NAME {exc.kernel_name}: {exc.reason}"
    elif isinstance(exc, KernelCoverageError):
        text = f"{product_id}: {exc.reason}"
    elif isinstance(exc, ValueError) and "SPICE_FILE_NAME" in str(exc):
        text = f"{product_id}: {exc}"
    else:
        text = f"{product_id}: unexpected {type(exc).__name__}: {exc}"
    return one_line(text, 600)


def _quarantine(store: Store, fs, vol_path: str, volume_id: str, product_id: str,
                relative_path: str, exc: BaseException, evidence: dict[str, bytes]
                ) -> dict[str, Any]:
    reason = _reason(product_id, exc)
    fname = posixpath.basename(relative_path) or "label.lbl"
    payload = evidence.get(fname) or None
    if payload is None:  # the label as evidence, if it is safely inside the volume
        try:
            path = confine(fs, posixpath.normpath(posixpath.join(vol_path, relative_path)),
                           vol_path, who=product_id, what="label")
            payload = read_capped(fs, path, who=product_id, what="label",
                                  limit=_MAX_EVIDENCE_BYTES)
        except TRANSIENT_ERRORS:
            raise
        except Exception:  # noqa: BLE001 - no evidence is fine; the reason says why
            payload = None
    name = product_id if is_plain_token(product_id) else \
        f"{volume_id}-{checksum_bytes(product_id.encode())[:12]}"
    qkey = quarantine(store, stage="ingest", name=name, reason=reason, payload_bytes=payload,
                      filename=fname if is_plain_token(fname) else "label.lbl")
    return {"product_id": product_id, "reason": reason, "record": qkey, "quarantined": True}


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
