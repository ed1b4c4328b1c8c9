"""Shared flow helpers: settings from parameters, result storage, artifacts."""

from __future__ import annotations

import hashlib
import json

from flows.params import Sources, Thresholds
from iovolc.settings import Settings, load_settings
from iovolc.store import Store


def settings_for(sources: Sources) -> Settings:
    """One settings object: flow parameter > environment > config file > default."""
    return load_settings(archive_url=sources.archive_url, kernels_url=sources.kernels_url,
                         store_url=sources.store_url, s3_endpoint_url=sources.s3_endpoint_url)


def config_hash(thresholds: Thresholds | None = None, **extra) -> str:
    """Hash of everything that changes results (thresholds, code version)."""
    from iovolc import __version__

    payload = {"thresholds": (thresholds or Thresholds()).model_dump(), "version": __version__,
               **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def result_storage_for(settings: Settings):
    """Prefect result storage on the object store (so every worker sees results)."""
    from prefect.filesystems import LocalFileSystem, RemoteFileSystem

    store = Store.from_settings(settings)
    if store.url.startswith("file://") or "://" not in store.url:
        return LocalFileSystem(basepath=store.path("prefect-results"))
    opts = settings.storage_options(store.url)
    # credentials stay in the environment: s3fs reads AWS_* itself
    opts = {k: v for k, v in opts.items() if k not in ("key", "secret", "token")}
    return RemoteFileSystem(basepath=store.url_for("prefect-results"), settings=opts)


def store_link(store: Store, key: str) -> str:
    url = store.url_for(key)
    return url if "://" in url else "file://" + url
