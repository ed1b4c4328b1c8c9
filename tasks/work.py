"""Stage work run in worker processes: load by key -> core call -> write -> keys.

No Prefect here: these functions are what the thin Prefect tasks in
``tasks/stages.py`` submit to a process pool (CSPICE is process-global and
not thread-safe, so SPICE work never runs on a thread). Arguments are keys,
URLs and a :class:`~iovolc.settings.Settings` (no secrets: credentials are
read from the environment of the process at call time). Every write goes
through :class:`~iovolc.store.Store` (write-then-finalize), and each
function first checks whether its outputs exist, so rerunning finished work
writes nothing. Policy (which products, grouping, pointing) is in the core:
:mod:`iovolc.ingest` and :mod:`iovolc.pipeline`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd

from iovolc import __version__ as IOVOLC_VERSION
from iovolc.catalog import build_catalog
from iovolc.extract import ExtractionConfig
from iovolc.ingest import land_products, plan_discovery
from iovolc.kernels import MissingKernelError, kernel_set_for
from iovolc.pds3 import ProductError
from iovolc.pds3_index import index_files
from iovolc.pipeline import (
    FrameResult,
    calibrate_group,
    calibrated_ids,
    extract_frame_result,
    extract_group,
    group_products,
    solve_pointing,
    times_in_reach,
    uncalibrated_results,
)
from iovolc.pipeline import finish_pass as pipeline_finish_pass
from iovolc.products import fits_kernels, fits_to_frame, frame_to_fits, same_frame
from iovolc.reader import read_jiram_product
from iovolc.request import check_perijoves
from iovolc.settings import Settings
from iovolc.spice import LoadedKernels
from iovolc.store import Store, checksum_bytes, object_key, quarantine


def _store(settings: Settings) -> Store:
    return Store.from_settings(settings)


# --- ingestion ------------------------------------------------------------------
def discover(settings: Settings, *, perijoves: list[int] | None, force: bool) -> dict:
    """Volumes and products in the archive not yet ingested (see :func:`iovolc.ingest.plan_discovery`).

    Index rows and duplicate product ids that cannot be used are quarantined
    here, each with its reason; the rest of the volume goes on. Requested
    perijoves the archive has no volume for: :class:`iovolc.request.NoDataError`.
    Returns ``{"volumes": {volume URL: {"volume_id", "products"}}, "problems":
    [{"product_id", "reason"}]}``.
    """
    fs, root = settings.fs(settings.archive_url)
    check_perijoves(settings.archive_url, perijoves, fs=fs)  # NoDataError: one line, not retried
    store = _store(settings)
    done: dict[str, set[str]] = {}
    plan = plan_discovery(settings.archive_url, fs=fs, perijoves=perijoves)
    out: dict[str, dict] = {}
    for vol, info in plan.volumes.items():
        vid = info["volume_id"]
        state_key = object_key("ingest_state", volume_id=vid)
        done[vid] = set() if force or not store.exists(state_key) \
            else set(store.get_json(state_key))
        todo = [(pid, rel) for pid, rel in info["products"] if pid not in done[vid]]
        out[vol] = {"volume_id": vid, "products": todo}
    for bad in plan.problems:
        quarantine(store, stage="ingest", name=bad["name"], reason=bad["reason"])
    # index rows and duplicates set aside here are reported with the run's quarantine
    return {"volumes": out,
            "problems": [{"product_id": b["name"], "reason": b["reason"], "quarantined": True}
                         for b in plan.problems]}


def ingest_batch(settings: Settings, *, volume_url: str, volume_id: str,
                 products: list[tuple[str, str]]) -> dict:
    """Land products unchanged (+ sha256) with the kernels they need.

    Each product's whole handling (label, time, perijove, image values, kernels)
    sits inside one quarantine-or-continue boundary
    (:func:`iovolc.ingest.land_product`): a bad product is quarantined with
    its reason, the others go on.
    """
    fs, _ = settings.fs(settings.archive_url)
    kfs, _ = settings.fs(settings.kernels_url)
    store = _store(settings)
    # one batch: the kernels all its products name are verified by SPICE in one run
    # of the check process (iovolc.ingest.land_products, iovolc.spicecheck)
    rows = land_products(store, fs=fs, archive_url=settings.archive_url,
                         volume_url=volume_url, volume_id=volume_id, products=products,
                         kernel_root=settings.kernels_url, kfs=kfs,
                         cache_dir=settings.cache_dir)
    return {"ingested": [r for r in rows if not r.get("quarantined")],
            "quarantined": [r for r in rows if r.get("quarantined")]}


def land_index(settings: Settings, *, volume_url: str, volume_id: str) -> None:
    """Copy the volume's INDEX files unchanged (only regular files of its ``INDEX/``
    folder; a link out of the volume is never followed: iovolc.pds3_index.index_files)."""
    fs, _ = settings.fs(settings.archive_url)
    store = _store(settings)
    for rel, path in index_files(volume_url, fs=fs):
        store.put_bytes(object_key("raw", volume_id=volume_id, relative_path=rel),
                        fs.cat_file(path))


# --- calibration ------------------------------------------------------------------
def reach_of_groups(settings: Settings, *, groups: list[list[dict]]) -> list[bool | None]:
    """Whether Io can reach each sequence (ingest manifest rows: each frame's time,
    bands and landed kernels), as :func:`calibrate_group` will decide, so that the
    flow can batch by cost (iovolc.batches). Only a cost hint: None where it cannot
    tell (a row without kernel names, kernels that do not load); the calibration
    decides again, and quarantines what is bad."""
    store = _store(settings)
    out: list[bool | None] = []
    ksets: dict[tuple, object] = {}  # one kernel lookup per kernel list
    with LoadedKernels() as loaded:
        for group in groups:
            # a sequence's frames may name different kernels: each set with its frames
            by_kernels: dict[tuple, list[float]] = {}
            for m in group:
                by_kernels.setdefault(tuple(m.get("kernels") or ()), []).append(m["et_mid"])
            if () in by_kernels:  # a row without kernel names: cannot tell
                out.append(None)
                continue
            answer: bool | None = False
            for names, ets in by_kernels.items():
                try:
                    if names not in ksets:
                        ksets[names] = _kernel_set(settings, store, list(names))
                    loaded.use(ksets[names])
                    if times_in_reach(ets, bands=tuple(group[0]["bands"])):
                        answer = True
                        break
                except (ConnectionError, TimeoutError):
                    raise
                except Exception:  # noqa: BLE001 - a hint only: calibration says why
                    answer = None
                    break
            out.append(answer)
    return out


def calibrate_groups(settings: Settings, *, perijove: int, groups: list[list[dict]],
                     config_hash: str, force: bool = False) -> list[dict]:
    """Calibrated FITS per frame and a frame-summary table (with limb fits) per group."""
    store = _store(settings)
    with LoadedKernels() as loaded:
        return [done for group in groups if (done := _calibrate_one(
            store, settings, perijove, group, loaded, config_hash=config_hash, force=force))]


def _calibrate_one(store: Store, settings: Settings, perijove: int, group: list[dict],
                   loaded: LoadedKernels, *, config_hash: str, force: bool) -> dict | None:
    """One group of :func:`calibrate_groups` (kernels loaded through ``loaded``)."""
    kroot = store.url_for("kernels")
    gid = group[0]["product_id"]
    fkey = object_key("frames", perijove=perijove, group_id=gid)
    if store.exists(fkey) and not force:
        # the frames it holds (products quarantined at calibration have no FITS, nor
        # the frames of sequences Io cannot reach)
        done_ids = calibrated_ids(store.get_parquet(fkey))
        return {"group_id": gid, "frames_key": fkey, "skipped": True,
                "fits_keys": [object_key("calibrated", perijove=perijove, product_id=p)
                              for p in done_ids]}
    products = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in group:
            try:
                products.append(_load_raw(store, m, Path(tmp)))
            except (ConnectionError, TimeoutError):
                raise
            except (ProductError, OSError) as exc:
                quarantine(store, stage="calibrate", name=m["product_id"],
                           reason=f"{m['product_id']}: {exc}")
    if not products:
        return None
    results, keys = [], []
    # products naming different kernels are calibrated with their own kernel set
    by_kernels: dict[tuple, list] = {}
    for p in products:
        by_kernels.setdefault(tuple(p.spice_file_names), []).append(p)
    for names, prods in by_kernels.items():
        try:
            kset = kernel_set_for(prods[0], kernel_root=kroot, cache_dir=settings.cache_dir,
                                  fs=store.fs)
        except (MissingKernelError, ValueError) as exc:
            for p in prods:
                quarantine(store, stage="calibrate", name=p.product_id,
                           reason=f"{p.product_id}: {exc}")
            continue
        for sub in group_products(prods):
            try:
                loaded.use(kset)
                done = calibrate_group(sub)
            except (ConnectionError, TimeoutError):
                raise  # transient: the task is retried
            except Exception as exc:  # noqa: BLE001 - the boundary: this sequence only
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                for p in sub:
                    quarantine(store, stage="calibrate", name=p.product_id,
                               reason=f"{p.product_id}: calibration failed: "
                                      f"{type(exc).__name__}: {text}")
                continue
            for r in done:
                if r.radiance is None:  # Io out of reach: a summary row only
                    continue
                key = object_key("calibrated", perijove=perijove, product_id=r.product_id)
                store.put_bytes(key, frame_to_fits(r, kernels=list(names),
                                                   config_hash=config_hash),
                                overwrite=force, same=None if force else functools.partial(
                                    same_frame, new=r, kernels=list(names),
                                    config_hash=config_hash))
                keys.append(key)
            results += done
    if not results:
        return None
    frames = pd.DataFrame([r.summary for r in results])
    frames["iovolc_version"] = IOVOLC_VERSION
    store.put_parquet(fkey, frames, overwrite=force)
    return {"group_id": gid, "frames_key": fkey, "fits_keys": keys, "skipped": False}


def _load_raw(store: Store, meta: dict, tmp: Path):
    """Raw label + image from the store into a temp folder, then read."""
    label_key = meta["label_key"]
    local = tmp / PurePosixPath(label_key).name
    store.get_file(label_key, local)
    store.get_file(meta["image_key"], tmp / PurePosixPath(meta["image_key"]).name)
    return read_jiram_product(str(local))


# --- pointing -----------------------------------------------------------------------
def solve_pass(settings: Settings, *, perijove: int, frames_keys: list[str]) -> dict:
    """The pass's pointing solution from its frames' limb fits (pure; no SPICE)."""
    store = _store(settings)
    frames = pd.concat([store.get_parquet(k) for k in sorted(frames_keys)], ignore_index=True)
    pointing = solve_pointing(frames).sort_values("product_id", ignore_index=True)
    key = object_key("pointing", perijove=perijove)
    store.put_parquet(key, pointing, overwrite=True)
    return {"pointing_key": key, "pointing_sha256": _table_hash(pointing),
            "methods": pointing["pointing_method"].value_counts().to_dict()}


def _table_hash(df: pd.DataFrame) -> str:
    return checksum_bytes(df.to_csv(index=False).encode())


# --- extraction ------------------------------------------------------------------
def extract_groups(settings: Settings, *, perijove: int, groups: list[dict], pointing_key: str,
                   pointing_sha256: str, config: dict, force: bool = False) -> list[dict]:
    """Detections and frame summaries per group on the pass's pointing."""
    store = _store(settings)
    pointing = store.get_parquet(pointing_key)
    cfg = ExtractionConfig(**config)
    out = []
    with LoadedKernels() as loaded:
        for g in groups:
            if (done := _extract_one(store, settings, perijove, g, pointing, loaded,
                                     pointing_sha256=pointing_sha256, config=config, cfg=cfg,
                                     force=force)):
                out.append(done)
    return out


def _extract_one(store: Store, settings: Settings, perijove: int, g: dict,
                 pointing: pd.DataFrame, loaded: LoadedKernels, *, pointing_sha256: str,
                 config: dict, cfg: ExtractionConfig, force: bool) -> dict | None:
    """One group of :func:`extract_groups` (kernels loaded through ``loaded``)."""
    dkey = object_key("detections", perijove=perijove, group_id=g["group_id"])
    skey = object_key("result", perijove=perijove, filename=f"{g['group_id']}.frames.parquet")
    tag = hashlib.sha256(f"{pointing_sha256}|{sorted(config.items())}".encode()).hexdigest()
    if not force and store.exists(dkey) and store.exists(skey) and \
            _tag(store, skey) == tag:
        return {"group_id": g["group_id"], "detections_key": dkey, "frames_key": skey,
                "skipped": True}
    calibrated, names = [], None
    for k in g["fits_keys"]:
        if store.exists(k):
            blob = store.get_bytes(k)  # read once: the frame, and the first one's kernels
            names = fits_kernels(blob) if names is None else names
            calibrated.append(fits_to_frame(blob))
    # frames left uncalibrated (Io out of reach) keep their row: summary only
    rest = uncalibrated_results(store.get_parquet(g["frames_key"])) if g.get("frames_key") else {}
    results = sorted([*calibrated, *rest.values()], key=lambda r: r.summary["et_mid"]) \
        if rest else calibrated
    if not results:
        return None
    if names is not None:
        loaded.use(_kernel_set(settings, store, names))
    det, summaries = extract_group(results, pointing, config=cfg)
    frames = pd.DataFrame(summaries)
    frames["tag"] = tag
    store.put_parquet(dkey, det, overwrite=True)
    store.put_parquet(skey, frames, overwrite=True)
    return {"group_id": g["group_id"], "detections_key": dkey, "frames_key": skey,
            "skipped": False}


def _tag(store: Store, key: str) -> str:
    try:
        return str(store.get_parquet(key)["tag"].iloc[0])
    except (KeyError, IndexError):
        return ""


def _kernel_set(settings: Settings, store: Store, names: list[str]):
    """The kernel set of kernel names, from the store's landed kernels."""
    return kernel_set_for(names, kernel_root=store.url_for("kernels"),
                          cache_dir=settings.cache_dir, fs=store.fs)


def finish_pass(settings: Settings, *, perijove: int, groups: list[dict], config: dict) -> dict:
    """Constellation refinement of the pass's 'pass' frames; the final tables of the pass."""
    store = _store(settings)
    frames = pd.concat([store.get_parquet(g["frames_key"]) for g in groups], ignore_index=True)
    det = pd.concat([store.get_parquet(g["detections_key"]) for g in groups], ignore_index=True)
    tag = checksum_bytes("".join(sorted(str(frames["tag"].iloc[i])
                                        for i in range(len(frames)))).encode())
    fkey = object_key("result", perijove=perijove, filename="frames.parquet")
    dkey = object_key("result", perijove=perijove, filename="detections.parquet")
    if store.exists(fkey) and store.exists(dkey) and _tag(store, fkey) == tag:
        return {"frames_key": fkey, "detections_key": dkey, "skipped": True}
    cfg = ExtractionConfig(**config)
    fits_of = {pid: object_key("calibrated", perijove=perijove, product_id=pid)
               for pid in calibrated_ids(frames)}
    rest = uncalibrated_results(frames)

    def reextract(pid: str, pointing: dict):
        r: FrameResult = rest[pid] if pid in rest else fits_to_frame(store.get_bytes(fits_of[pid]))
        return extract_frame_result(r, pointing, config=cfg, reregister=False)

    before = frames.set_index("product_id")["pointing_method"].to_dict()
    first = next(iter(fits_of.values()), None)
    with (_kernel_set(settings, store, fits_kernels(store.get_bytes(first))) if first
          else contextlib.nullcontext()):
        frames, det = pipeline_finish_pass(frames.drop(columns=["tag"]), det, reextract)
    changed = int(sum(before[p] != m for p, m in zip(frames["product_id"],
                                                     frames["pointing_method"], strict=True)))
    frames["tag"] = tag
    det = det.sort_values(["et_mid", "band", "line", "sample"], ignore_index=True)
    store.put_parquet(dkey, det, overwrite=True)
    store.put_parquet(fkey, frames.sort_values("et_mid", ignore_index=True), overwrite=True)
    return {"frames_key": fkey, "detections_key": dkey, "skipped": False,
            "constellation_frames": int((frames["pointing_method"] == "constellation").sum()),
            "frames_refined": changed}


# --- publishing ------------------------------------------------------------------
def publish(settings: Settings, *, perijoves: list[int] | None = None,
            config_hash: str = "") -> dict:
    """Catalog from every pass's final detections in the store; a new version if it changed.

    ``perijoves`` is accepted for the callers' logs only: the catalog always
    covers every perijove in the store.

    Under the store's ``publish`` lock: two runs publishing at once (a backfill)
    give consecutive versions, the second built on everything the first saw,
    and no update is lost. Writes every file of the version
    (:func:`iovolc.publish.bundle.build_bundle`), its alert records
    (``alerts/vNNNN.json``) and ``catalog/latest.json``.
    """
    from iovolc.publish.bundle import build_bundle

    store = _store(settings)
    with store.lock("publish"):
        # always every perijove in the store: a catalog built from a subset would drop
        # what another run published (a lost update)
        keys = [k for k in store.list("results/") if k.endswith("/detections.parquet")]
        tables = [t for t in (store.get_parquet(k) for k in keys) if len(t)]
        latest_key = object_key("catalog_latest")
        latest = store.get_json(latest_key) if store.exists(latest_key) else None
        if not tables:
            return {"version": latest["version"] if latest else None, "changed": False,
                    "n_hotspots": 0, "latest_key": latest_key, "alerts": []}
        det = pd.concat(tables, ignore_index=True)
        previous = store.get_parquet(latest["files"]["hotspots.parquet"]) if latest else None
        result = build_catalog(det, previous=previous)
        # the content: the rows and the configuration that made them (every row carries
        # the config hash, so new thresholds on the same data are a new version)
        digest = checksum_bytes(f"config {config_hash}\n".encode()
                                + result.catalog.to_csv(index=False).encode())
        if latest and latest.get("content_sha256") == digest:
            return {"version": latest["version"], "changed": False, "latest_key": latest_key,
                    "n_hotspots": int(result.hotspots.shape[0]), "files": latest["files"],
                    "alerts": []}
        n = int(latest["version"][1:]) + 1 if latest else 1
        version = f"v{n:04d}"
        prev_cat = store.get_parquet(latest["files"]["catalog.parquet"]) if latest else None
        bundle = build_bundle(result, version=version, previous=prev_cat,
                              pipeline_version=IOVOLC_VERSION, config_hash=config_hash,
                              previous_version=latest["version"] if latest else None)
        files = {}
        for name, data in sorted(bundle.items()):
            key = object_key("catalog", version=version, filename=name)
            store.put_bytes(key, data, overwrite=True)
            files[name] = key
        det_key = object_key("catalog", version=version, filename="detections.parquet")
        store.put_parquet(det_key, det, overwrite=True)
        files["detections.parquet"] = det_key
        alerts = json.loads(bundle["alerts.json"])["alerts"]
        alerts_key = object_key("alerts", version=version)
        store.put_json(alerts_key, {"catalog_version": version, "alerts": alerts},
                       overwrite=True)
        pointer = {
            "version": version, "files": files, "content_sha256": digest,
            "perijoves": sorted(int(p) for p in det["perijove"].unique()),
            "n_hotspots": int(result.hotspots.shape[0]), "n_rows": int(result.catalog.shape[0]),
            "iovolc_version": IOVOLC_VERSION, "config_hash": config_hash,
            "alerts_key": alerts_key, "n_alerts": len(alerts),
        }
        store.put_json(latest_key, pointer, overwrite=True)
    return {**pointer, "changed": True, "latest_key": latest_key, "alerts": alerts}


def manifest_groups(manifest: list[dict], *, prefer: str = "RDR") -> list[list[dict]]:
    """A perijove's products (manifest rows) split into observation sequences.

    One product per frame: the RDR (the team's calibration) when present, else
    the EDR (calibrated here with the matching real dark).
    """
    from iovolc.pipeline import frame_key

    chosen: dict[str, dict] = {}
    for m in manifest:
        k = frame_key(m["product_id"])
        if k not in chosen or (m.get("product_type") == prefer
                               and chosen[k].get("product_type") != prefer):
            chosen[k] = m
    rows = sorted(chosen.values(), key=lambda m: m["et_mid"])

    class _P:  # the fields group_products needs
        def __init__(self, m):
            self.m, self.et_mid = m, m["et_mid"]
            self.bands, self.exposure_s = tuple(m["bands"]), m["exposure_s"]

    return [[p.m for p in g] for g in group_products([_P(m) for m in rows])]

