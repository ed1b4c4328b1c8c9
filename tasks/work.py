"""Stage work run in worker processes: load by key -> core call -> write -> keys.

No Prefect here: these functions are what the thin Prefect tasks in
``tasks/stages.py`` submit to a process pool (CSPICE is process-global and
not thread-safe, so SPICE work never runs on a thread). Arguments are keys,
URLs and a :class:`~iovolc.settings.Settings` (no secrets: credentials are
read from the environment of the process at call time). Every write goes
through :class:`~iovolc.store.Store` (write-then-finalize), and each
function first checks whether its outputs exist, so rerunning finished work
writes nothing.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd

from iovolc import __version__ as IOVOLC_VERSION
from iovolc.catalog import build_catalog, write_catalog
from iovolc.extract import ExtractionConfig
from iovolc.kernels import MissingKernelError, kernel_set_for, resolve_kernels
from iovolc.pds3 import ProductError, read_index, read_jiram_product, volume_orbit
from iovolc.pipeline import calibrate_group, extract_group, group_products, perijove_check
from iovolc.products import fits_to_frame, frame_to_fits
from iovolc.settings import Settings
from iovolc.store import Store, checksum_bytes, object_key, quarantine


def _store(settings: Settings) -> Store:
    return Store.from_settings(settings)


def _join(url: str, rel: str) -> str:
    return url.rstrip("/") + "/" + rel.lstrip("/")


# --- ingestion ------------------------------------------------------------------
def discover(settings: Settings, *, perijoves: list[int] | None, force: bool) -> dict:
    """Volumes and products in the archive not yet ingested, per volume.

    Returns {volume_url: [relative label paths]} (and the index files to land).
    """
    from iovolc.pds3 import list_volumes

    fs, _ = settings.fs(settings.archive_url)
    store = _store(settings)
    out: dict[str, dict] = {}
    for vol in list_volumes(settings.archive_url, fs=fs):
        vid = PurePosixPath(vol.rstrip("/")).name
        if perijoves is not None and volume_orbit(vid) not in perijoves:
            continue
        try:
            idx = read_index(vol, fs=fs)
        except ProductError as exc:
            quarantine(store, stage="ingest", name=vid, reason=str(exc))
            continue
        state_key = object_key("ingest_state", volume_id=vid)
        done = set() if force or not store.exists(state_key) else set(store.get_json(state_key))
        labels = []
        for _, row in idx.iterrows():
            pid = str(row.get("product_id", "")).strip()
            if pid and pid not in done:
                rel = str(row["label_url"])[len(vol.rstrip("/")) + 1:]
                labels.append((pid, rel))
        out[vol] = {"volume_id": vid, "products": labels}
    return out


def ingest_batch(settings: Settings, *, volume_url: str, volume_id: str,
                 products: list[tuple[str, str]]) -> dict:
    """Land products unchanged (+ sha256) with the kernels they need.

    A product whose label or image is bad, or whose kernels are missing, is
    quarantined with its reason; the others go on.
    """
    fs, _ = settings.fs(settings.archive_url)
    store = _store(settings)
    kfs, _ = settings.fs(settings.kernels_url)
    ingested, bad = [], []
    for pid, rel in products:
        label_url = _join(volume_url, rel)
        try:
            prod = read_jiram_product(label_url, fs=fs)
            img_name = _image_name(label_url, fs)
            files = {rel: fs.cat_file(fs._strip_protocol(label_url))}
            img_rel = str(PurePosixPath(rel).parent / img_name)
            files[img_rel] = fs.cat_file(fs._strip_protocol(_join(volume_url, img_rel)))
            with tempfile.TemporaryDirectory() as tmp:
                paths = resolve_kernels(prod.spice_file_names, kernel_root=settings.kernels_url,
                                        cache_dir=Path(tmp), fs=kfs)
                for p in paths:
                    key = object_key("kernel", name=p.name)
                    if not store.exists(key):
                        store.put_file(key, p)
        except (ProductError, MissingKernelError, ValueError) as exc:
            payload = None
            try:
                payload = fs.cat_file(fs._strip_protocol(label_url))
            except OSError:
                pass
            qkey = quarantine(store, stage="ingest", name=pid, reason=str(exc),
                              payload_bytes=payload, filename=PurePosixPath(rel).name)
            bad.append({"product_id": pid, "reason": str(exc), "record": qkey})
            continue
        for frel, data in files.items():
            store.put_bytes(object_key("raw", volume_id=volume_id, relative_path=frel), data)
            store.put_bytes(object_key("raw_checksum", volume_id=volume_id, relative_path=frel),
                            checksum_bytes(data).encode())
        pj, note = perijove_check(prod)
        ingested.append({
            "product_id": pid, "volume_id": volume_id, "label_key": object_key(
                "raw", volume_id=volume_id, relative_path=rel), "perijove": pj,
            "orbit_number": prod.orbit_number, "perijove_note": note, "mode": prod.mode,
            "exposure_s": prod.exposure_s, "et_mid": prod.et_mid,
            "product_type": prod.product_type, "target_name": prod.target_name,
        })
    return {"ingested": ingested, "quarantined": bad}


def land_index(settings: Settings, *, volume_url: str, volume_id: str) -> None:
    """Copy the volume's INDEX files unchanged."""
    fs, _ = settings.fs(settings.archive_url)
    store = _store(settings)
    base = fs._strip_protocol(volume_url).rstrip("/")
    for path in fs.find(base):
        rel = path[len(base) + 1:]
        if rel.upper().startswith("INDEX/"):
            data = fs.cat_file(path)
            store.put_bytes(object_key("raw", volume_id=volume_id, relative_path=rel), data)


def _image_name(label_url: str, fs) -> str:
    from iovolc.pds3 import read_label

    lab = read_label(label_url, fs=fs)
    ptr = lab["^IMAGE"]
    name = ptr[0] if isinstance(ptr, (list, tuple)) else ptr
    # the real file may differ in case: find it next to the label
    parent = fs._strip_protocol(label_url).rsplit("/", 1)[0]
    for p in fs.ls(parent, detail=False):
        if PurePosixPath(p).name.upper() == str(name).upper():
            return PurePosixPath(p).name
    return str(name)


# --- calibration ------------------------------------------------------------------
def calibrate_groups(settings: Settings, *, perijove: int, groups: list[list[dict]],
                     config_hash: str, force: bool = False) -> list[dict]:
    """Calibrated FITS per frame and a frame-summary table per group."""
    store = _store(settings)
    kroot = store.url_for("kernels")
    out = []
    for group in groups:
        gid = group[0]["product_id"]
        fkey = object_key("frames", perijove=perijove, group_id=gid)
        if store.exists(fkey) and not force:
            out.append({"group_id": gid, "frames_key": fkey, "skipped": True,
                        "fits_keys": [object_key("calibrated", perijove=perijove,
                                                 product_id=m["product_id"]) for m in group]})
            continue
        products, bad = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for m in group:
                try:
                    products.append(_load_raw(store, m, Path(tmp)))
                except (ProductError, OSError) as exc:
                    quarantine(store, stage="calibrate", name=m["product_id"], reason=str(exc))
                    bad.append(m["product_id"])
            if not products:
                continue
            try:
                kset = kernel_set_for(products[0], kernel_root=kroot,
                                      cache_dir=settings.cache_dir, fs=store.fs)
            except (MissingKernelError, ValueError) as exc:
                for p in products:
                    quarantine(store, stage="calibrate", name=p.product_id, reason=str(exc))
                continue
            with kset:
                results = calibrate_group(products)
        fits_keys = []
        for r in results:
            key = object_key("calibrated", perijove=perijove, product_id=r.product_id)
            store.put_bytes(key, frame_to_fits(r, kernels=list(products[0].spice_file_names),
                                               config_hash=config_hash), overwrite=force)
            fits_keys.append(key)
        frames = pd.DataFrame([r.summary for r in results])
        frames["iovolc_version"] = IOVOLC_VERSION
        store.put_parquet(fkey, frames, overwrite=force)
        out.append({"group_id": gid, "frames_key": fkey, "fits_keys": fits_keys,
                    "skipped": False, "quarantined": bad})
    return out


def _load_raw(store: Store, meta: dict, tmp: Path):
    """Raw label + image from the store into a temp folder, then read."""
    label_key = meta["label_key"]
    local = tmp / PurePosixPath(label_key).name
    store.get_file(label_key, local)
    from iovolc.pds3 import read_label

    lab = read_label(str(local))
    ptr = lab["^IMAGE"]
    name = str(ptr[0] if isinstance(ptr, (list, tuple)) else ptr)
    parent = str(PurePosixPath(label_key).parent)
    img_key = next((k for k in store.list(parent + "/") if PurePosixPath(k).name.upper()
                    == name.upper()), parent + "/" + name)
    store.get_file(img_key, tmp / PurePosixPath(img_key).name)
    return read_jiram_product(str(local))


# --- extraction ------------------------------------------------------------------
def extract_groups(settings: Settings, *, perijove: int, groups: list[dict],
                   config: dict, force: bool = False) -> list[str]:
    """Detections table per group from its calibrated frames."""
    store = _store(settings)
    kroot = store.url_for("kernels")
    cfg = ExtractionConfig(**config)
    keys = []
    for g in groups:
        dkey = object_key("detections", perijove=perijove, group_id=g["group_id"])
        if store.exists(dkey) and not force:
            keys.append(dkey)
            continue
        results = [fits_to_frame(store.get_bytes(k)) for k in g["fits_keys"] if store.exists(k)]
        if not results:
            continue
        kernels = _fits_kernels(store.get_bytes(g["fits_keys"][0]))
        kset = kernel_set_for(kernels, kernel_root=kroot, cache_dir=settings.cache_dir,
                              fs=store.fs)
        with kset:
            det = extract_group(results, config=cfg)
        store.put_parquet(dkey, det, overwrite=force)
        keys.append(dkey)
    return keys


def _fits_kernels(data: bytes) -> list[str]:
    from astropy.io import fits

    with fits.open(io.BytesIO(data)) as hdul:
        h = hdul[0].header
        return [str(h[k]) for k in sorted(h) if k.startswith("KERN")]


# --- publishing ------------------------------------------------------------------
def publish(settings: Settings, *, perijoves: list[int] | None = None) -> dict:
    """Catalog from every detection table in the store; new version if it changed."""
    store = _store(settings)
    keys = [k for k in store.list("detections/") if k.endswith(".parquet")]
    if perijoves is not None:
        keys = [k for k in keys if int(k.split("/")[1][2:]) in perijoves]
    tables = [store.get_parquet(k) for k in keys]
    tables = [t for t in tables if len(t)]
    latest_key = object_key("catalog_latest")
    latest = store.get_json(latest_key) if store.exists(latest_key) else None
    if not tables:
        return {"version": latest["version"] if latest else None, "changed": False,
                "n_hotspots": 0, "latest_key": latest_key}
    det = pd.concat(tables, ignore_index=True)
    previous = None
    if latest:
        previous = store.get_parquet(latest["files"]["hotspots.parquet"])
    result = build_catalog(det, previous=previous)
    csv_bytes = result.catalog.to_csv(index=False).encode()
    digest = checksum_bytes(csv_bytes)
    if latest and latest.get("content_sha256") == digest:
        return {"version": latest["version"], "changed": False, "latest_key": latest_key,
                "n_hotspots": int(result.hotspots.shape[0]), "files": latest["files"]}
    n = int(latest["version"][1:]) + 1 if latest else 1
    version = f"v{n:04d}"
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_catalog(result, Path(tmp), version=version):
            key = object_key("catalog", version=version, filename=path.name)
            store.put_file(key, path)
            files[path.name] = key
    det_key = object_key("catalog", version=version, filename="detections.parquet")
    store.put_parquet(det_key, det)
    files["detections.parquet"] = det_key
    pointer = {
        "version": version, "files": files, "content_sha256": digest,
        "perijoves": sorted(int(p) for p in det["perijove"].unique()),
        "n_hotspots": int(result.hotspots.shape[0]), "n_rows": int(result.catalog.shape[0]),
        "iovolc_version": IOVOLC_VERSION,
    }
    store.put_json(latest_key, pointer, overwrite=True)
    return {**pointer, "changed": True, "latest_key": latest_key}


def frame_key(product_id: str) -> str:
    """The frame an EDR or RDR product belongs to (its id without the type)."""
    return product_id.upper().replace("_EDR_", "_").replace("_RDR_", "_")


def manifest_groups(manifest: list[dict], *, prefer: str = "RDR") -> list[list[dict]]:
    """A perijove's products (manifest rows) split into observation sequences.

    One product per frame: the RDR (the team's calibration) when present, else
    the EDR (calibrated here with the matching real dark).
    """
    chosen: dict[str, dict] = {}
    for m in manifest:
        k = frame_key(m["product_id"])
        if k not in chosen or (m.get("product_type") == prefer
                               and chosen[k].get("product_type") != prefer):
            chosen[k] = m
    manifest = sorted(chosen.values(), key=lambda m: m["et_mid"])

    class _P:  # the fields group_products needs
        def __init__(self, m):
            self.m, self.et_mid = m, m["et_mid"]
            self.mode, self.exposure_s = m["mode"], m["exposure_s"]

    return [[p.m for p in g] for g in group_products([_P(m) for m in manifest])]


def pack(groups: list, *, max_frames: int) -> list[list]:
    """Whole groups packed into batches of at most ``max_frames`` frames."""
    batches, cur, n = [], [], 0
    for g in groups:
        size = len(g) if isinstance(g, list) else len(g.get("fits_keys", [])) or 1
        if cur and n + size > max_frames:
            batches.append(cur)
            cur, n = [], 0
        cur.append(g)
        n += size
    if cur:
        batches.append(cur)
    return batches
