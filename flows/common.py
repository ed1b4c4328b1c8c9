"""Shared flow helpers: settings from parameters, result storage, artifacts."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, timedelta

from flows.params import Sources, Thresholds
from iovolc.settings import Settings, load_settings
from iovolc.store import Store, check_store_url


def settings_for(sources: Sources) -> Settings:
    """One settings object: flow parameter > environment > config file > default.

    URLs that cannot work are refused here, before any work (ValueError: never
    retried): the store's always, the archive's and the kernels' when set.
    """
    from iovolc.request import check_source_url

    settings = load_settings(archive_url=sources.archive_url, kernels_url=sources.kernels_url,
                             store_url=sources.store_url, s3_endpoint_url=sources.s3_endpoint_url)
    check_store_url(settings.store_url)
    for name in ("archive", "kernels"):
        if getattr(settings, f"{name}_url"):
            check_source_url(name, getattr(settings, f"{name}_url"))
    return settings


def config_hash(thresholds: Thresholds | None = None, **extra) -> str:
    """Hash of everything that changes results (thresholds, code version)."""
    from iovolc import __version__

    payload = {"thresholds": (thresholds or Thresholds()).model_dump(), "version": __version__,
               **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_SAVED: dict[str, str] = {}


def result_storage_for(settings: Settings) -> str:
    """Prefect result storage on the object store (so every worker sees results).

    Prefect needs the storage block saved server-side: one block per store,
    named after a hash of its URL; returns the block reference.
    """
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    store = Store.from_settings(settings)
    name = "iovolc-results-" + hashlib.sha256(store.url.encode()).hexdigest()[:12]
    if name in _SAVED:
        return _SAVED[name]
    if store.url.startswith("file://") or "://" not in store.url:
        block = LocalFileSystem(basepath=store.path("prefect-results"))
        ref = f"local-file-system/{name}"
    else:
        opts = settings.storage_options(store.url)
        # credentials stay in the environment: s3fs reads AWS_* itself
        opts = {k: v for k, v in opts.items() if k not in ("key", "secret", "token")}
        block = RemoteFileSystem(basepath=store.url_for("prefect-results"), settings=opts)
        ref = f"remote-file-system/{name}"
    block.save(name, overwrite=True)
    _SAVED[name] = ref
    return ref


def prune_results(settings: Settings, *, older_than: timedelta | None = None) -> int:
    """Delete Prefect result records older than ``older_than`` (default: the cached
    tasks' expiry) from the store's ``prefect-results/`` prefix; returns how many.
    Expired records are never used again (their cache entry has expired), so
    this only bounds the prefix's size."""
    from datetime import datetime

    from tasks.stages import RESULTS_EXPIRY

    store = Store.from_settings(settings)
    limit = datetime.now(UTC) - (older_than or RESULTS_EXPIRY)
    n = 0
    for key in store.list("prefect-results/"):
        try:
            modified = store.fs.modified(store.path(key))
        except (OSError, NotImplementedError):
            continue
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified < limit:
            store.fs.rm_file(store.path(key))
            n += 1
    return n


def store_link(store: Store, key: str) -> str:
    url = store.url_for(key)
    return url if "://" in url else "file://" + url
