"""Object store: one pure layout function and a small write-once API over fsspec.

Works for ``file://``, ``memory://`` and ``s3://`` roots. Every key is made by
:func:`object_key`; the layout (relative to the store root) is::

    raw/{volume_id}/{relative_path}                 raw          products as downlinked
    raw/{volume_id}/{relative_path}.sha256          raw_checksum sha256 hex of the raw object
    kernels/{subdir}/{name}                         kernel       subdir from the extension
    calibrated/pj{perijove:03d}/{product_id}.fits   calibrated
    detections/pj{perijove:03d}/{group_id}.parquet  detections
    frames/pj{perijove:03d}/{group_id}.parquet      frames       per-frame summaries + limb fits
    pointing/pj{perijove:03d}.parquet               pointing     the pass's pointing solution
    results/pj{perijove:03d}/{filename}             result       final frames/detections of a pass
    catalog/{version}/{filename}                    catalog
    catalog/latest.json                             catalog_latest
    quarantine/{stage}/{name}.json                  quarantine   the reason record
    quarantine/{stage}/{name}/{filename}            quarantine_object  the bad object
    manifests/{stage}/pj{perijove:03d}.json         manifest
    state/ingested/{volume_id}.json                 ingest_state product ids ingested
    alerts/{version}.json                           alerts       alerts raised by a version
    locks/{name}.lock                               lock         a held lock (exclusive create)

``raw`` keeps the path relative to the volume root exactly, e.g.
``raw/JNOJIR_2057/DATA/JIR_IMG_RDR_2023364T083012_V01.IMG``. Keys never start
with "/", never contain "." or ".." segments, empty segments or backslashes.

Writes are **write-then-finalize**: the bytes go to ``{key}.tmp-{32 hex}``
first, then are moved to ``key`` (a rename on local disk, copy + delete on
S3), so a reader never sees a half-written object; a crash leaves at most a
temporary object, which :meth:`Store.list` hides and :meth:`Store.clean_temp`
removes. Writing bytes identical to what is stored writes nothing and
returns False, so rerunning finished work costs reads only
(``store.stats.n_writes`` stays 0); different bytes raise FileExistsError
unless ``overwrite=True``.

Credentials (``key``/``secret``/``token`` in ``storage_options``) are never
shown by ``repr(store)``. Pass keys, not Store objects, as Prefect task
arguments (a Store may carry credentials and is not meant to be hashed into
cache keys); rebuild it in the task with ``Store.from_settings``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

from iovolc.spice import kernel_subdir

if TYPE_CHECKING:
    import pandas as pd

    from iovolc.settings import Settings

#: kind -> (template, parts); ``perijove`` is an int, ``relative_path`` may hold "/"
_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw": ("raw/{volume_id}/{relative_path}", ("volume_id", "relative_path")),
    "raw_checksum": ("raw/{volume_id}/{relative_path}.sha256", ("volume_id", "relative_path")),
    "kernel": ("kernels/{subdir}/{name}", ("name",)),
    "calibrated": ("calibrated/pj{perijove:03d}/{product_id}.fits", ("perijove", "product_id")),
    "detections": ("detections/pj{perijove:03d}/{group_id}.parquet", ("perijove", "group_id")),
    "frames": ("frames/pj{perijove:03d}/{group_id}.parquet", ("perijove", "group_id")),
    "pointing": ("pointing/pj{perijove:03d}.parquet", ("perijove",)),
    "result": ("results/pj{perijove:03d}/{filename}", ("perijove", "filename")),
    "catalog": ("catalog/{version}/{filename}", ("version", "filename")),
    "catalog_latest": ("catalog/latest.json", ()),
    "quarantine": ("quarantine/{stage}/{name}.json", ("stage", "name")),
    "quarantine_object": ("quarantine/{stage}/{name}/{filename}", ("stage", "name", "filename")),
    "manifest": ("manifests/{stage}/pj{perijove:03d}.json", ("stage", "perijove")),
    "ingest_state": ("state/ingested/{volume_id}.json", ("volume_id",)),
    "alerts": ("alerts/{version}.json", ("version",)),
    "lock": ("locks/{name}.lock", ("name",)),
}
#: the kinds :func:`object_key` knows
KINDS = tuple(_LAYOUT)

_TEMP_RE = re.compile(r"\.tmp-[0-9a-f]{32}$")
_CHUNK = 1 << 20
_SECRET_OPTIONS = frozenset(
    {"key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
     "aws_session_token", "session_token"}
)


def _check_segment(kind: str, part: str, value: str) -> None:
    bad = (
        value in ("", ".", "..")
        or "\\" in value
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    )
    if bad:
        raise ValueError(f"object_key({kind!r}): bad {part} {value!r}")


def _check_part(kind: str, part: str, value: Any) -> Any:
    if part == "perijove":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
            raise ValueError(f"object_key({kind!r}): perijove must be an int in 0..999, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"object_key({kind!r}): {part} must be a str, got {type(value).__name__}")
    if part == "relative_path":
        if value.startswith("/"):
            raise ValueError(f"object_key({kind!r}): relative_path must be relative, got {value!r}")
        for seg in value.split("/"):
            _check_segment(kind, part, seg)
    else:
        if "/" in value:
            raise ValueError(f"object_key({kind!r}): {part} must not contain '/', got {value!r}")
        _check_segment(kind, part, value)
    return value


def object_key(kind: str, **parts: Any) -> str:
    """The store key of an object of ``kind`` (pure; see the module docstring).

    Raises ValueError for an unknown kind, a missing or unexpected part, or a
    part that would make an unsafe key (absolute, "..", empty segment).
    """
    try:
        template, names = _LAYOUT[kind]
    except KeyError:
        raise ValueError(f"unknown object kind {kind!r}; known: {', '.join(KINDS)}") from None
    missing = [n for n in names if n not in parts]
    unexpected = sorted(set(parts) - set(names))
    if missing or unexpected:
        msg = [f"object_key({kind!r})"]
        if missing:
            msg.append(f"missing part(s): {', '.join(missing)}")
        if unexpected:
            msg.append(f"unexpected part(s): {', '.join(unexpected)}")
        raise ValueError("; ".join(msg) + f" (needs: {', '.join(names) or 'nothing'})")
    values = {n: _check_part(kind, n, parts[n]) for n in names}
    if kind == "kernel":
        values["subdir"] = kernel_subdir(values["name"])
    key = template.format(**values)
    check_key(key)
    return key


_SUPPORTED = ("file", "local", "memory", "s3", "s3a")


def check_store_url(url: str) -> str:
    """Refuse a store URL that cannot work, before any work and without retries.

    Supported schemes: file://, memory://, s3:// (bucket 3-63 characters of
    a-z, 0-9, '.', '-'); no '.' or '..' path segments. ValueError (one line).
    """
    from urllib.parse import urlsplit

    text = str(url)
    parts = urlsplit(text)
    scheme = parts.scheme or "file"
    if scheme not in _SUPPORTED:
        raise ValueError(f"store URL {text!r}: scheme {scheme!r} is not supported "
                         f"({', '.join(s + '://' for s in ('file', 'memory', 's3'))})")
    path = (parts.netloc + parts.path) if scheme in ("s3", "s3a", "memory") else parts.path
    segs = [s for s in path.split("/")]
    if any(s in (".", "..") for s in segs):
        raise ValueError(f"store URL {text!r}: '.' and '..' path segments are not allowed")
    if scheme in ("s3", "s3a"):
        bucket = parts.netloc
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket or ""):
            raise ValueError(f"store URL {text!r}: {bucket!r} is not a valid S3 bucket name")
    return text


def _precondition_failed(exc: BaseException) -> bool:
    """An S3 conditional write refused (HTTP 412 PreconditionFailed), however s3fs
    wraps it (OSError(EINVAL, message) with the botocore ClientError as its cause)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            err = response.get("Error", {})
            meta = response.get("ResponseMetadata", {})
            if err.get("Code") in ("PreconditionFailed", "412") \
                    or meta.get("HTTPStatusCode") == 412:
                return True
        text = str(seen)
        if "PreconditionFailed" in text or "pre-conditions you specified did not hold" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_key(key: str) -> str:
    """Validate a store key (relative, no "."/".."/empty segments, not a temp key)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"bad store key {key!r}")
    if key.startswith("/") or "\\" in key:
        raise ValueError(f"store key must be relative without backslashes: {key!r}")
    if any(seg in ("", ".", "..") for seg in key.split("/")):
        raise ValueError(f"store key has an empty, '.' or '..' segment: {key!r}")
    if _TEMP_RE.search(key):
        raise ValueError(f"store key looks like a temporary object: {key!r}")
    return key


def is_temp_key(key: str) -> bool:
    """True for the temporary objects of write-then-finalize."""
    return bool(_TEMP_RE.search(key))


def checksum_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _redact(options: Any) -> Any:
    if isinstance(options, Mapping):
        return {
            k: ("***" if str(k).lower() in _SECRET_OPTIONS else _redact(v))
            for k, v in options.items()
        }
    return options


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


@dataclass
class StoreStats:
    """Per-Store counters: objects written (finalized), left unchanged, deleted."""

    n_writes: int = 0
    n_unchanged: int = 0
    n_deletes: int = 0


@dataclass(frozen=True)
class Store:
    """An object store rooted at ``url`` (file://, memory://, s3://...)."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    stats: StoreStats = field(default_factory=StoreStats, compare=False, hash=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **storage_options: Any) -> Store:
        """The store at ``settings.store_url``; caller options override the settings'."""
        from iovolc.settings import merge_storage_options

        url = settings.store_url
        return cls(url, merge_storage_options(settings.storage_options(url), storage_options))

    def __repr__(self) -> str:
        return f"Store(url={self.url!r}, storage_options={_redact(dict(self.storage_options))!r})"

    # -- paths ---------------------------------------------------------------

    @cached_property
    def _fs_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return fs, root.rstrip("/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._fs_root[0]

    @property
    def root(self) -> str:
        """The root path as the filesystem spells it (no trailing '/')."""
        return self._fs_root[1]

    @property
    def _is_local(self) -> bool:
        return "file" in _protocols(self.fs)

    def path(self, key: str) -> str:
        """Filesystem path of ``key``."""
        check_key(key)
        return f"{self.root}/{key}"

    def url_for(self, key: str) -> str:
        """Full URL of ``key`` (for links and logs)."""
        check_key(key)
        return f"{self.url.rstrip('/')}/{key}"

    def _rel(self, path: str) -> str | None:
        prefix = self.root + "/"
        return path[len(prefix):] if path.startswith(prefix) else None

    def _fresh(self, path: str) -> None:
        # another process may have written since fsspec cached a listing (s3fs)
        self.fs.invalidate_cache(path)

    # -- reads -----------------------------------------------------------------

    def exists(self, key: str) -> bool:
        path = self.path(key)
        self._fresh(path)
        return bool(self.fs.isfile(path))

    def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"no object {key!r} in store {self.url}") from None

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> Path:
        """Download ``key`` to ``local_path`` (via a temporary file, then rename)."""
        path = self.path(key)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            with self.fs.open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
            os.replace(tmp, dest)
        except FileNotFoundError:
            raise FileNotFoundError(f"no object {key!r} in store {self.url}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def sha256(self, key: str) -> str:
        """sha256 hex digest of the stored object (streamed)."""
        h = hashlib.sha256()
        try:
            with self.fs.open(self.path(key), "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            raise FileNotFoundError(f"no object {key!r} in store {self.url}") from None
        return h.hexdigest()

    def size(self, key: str) -> int:
        return int(self.fs.size(self.path(key)))

    def _walk(self, prefix: str) -> list[str]:
        """Keys (temp objects included) under the folder of ``prefix``."""
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = f"{self.root}/{base}" if base else self.root
        self._fresh(start)
        try:
            found = self.fs.find(start)
        except FileNotFoundError:
            return []
        return [rel for p in found if (rel := self._rel(p)) is not None]

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix`` (a plain string prefix), temp objects excluded."""
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise ValueError(f"bad prefix {prefix!r}")
        return sorted(k for k in self._walk(prefix)
                      if k.startswith(prefix) and not is_temp_key(k))

    def list_temp(self, prefix: str = "") -> list[str]:
        """Temporary objects left by interrupted writes (under ``prefix``)."""
        return sorted(k for k in self._walk(prefix) if k.startswith(prefix) and is_temp_key(k))

    def clean_temp(self, prefix: str = "", *, older_than: float = 3600.0) -> int:
        """Delete temporary objects older than ``older_than`` seconds; returns how many.

        The age guard keeps the in-flight temp of a concurrent writer alive.
        """
        now = time.time()
        n = 0
        for rel in self.list_temp(prefix):
            path = f"{self.root}/{rel}"
            try:
                modified = self.fs.modified(path).timestamp()
            except (NotImplementedError, FileNotFoundError):
                modified = None
            if modified is not None and now - modified < older_than:
                continue
            self.fs.rm_file(path)
            n += 1
        return n

    # -- writes ------------------------------------------------------------------

    def _temp_path(self, key: str) -> str:
        return self.path(key) + f".tmp-{uuid.uuid4().hex}"

    def _prepare_parent(self, path: str) -> None:
        if self._is_local:
            self.fs.makedirs(self.fs._parent(path), exist_ok=True)

    def _finalize(self, tmp_path: str, final_path: str) -> None:
        """Move the temporary object onto its final key (rename when local)."""
        self.fs.mv(tmp_path, final_path)
        self._fresh(final_path)

    def _discard(self, tmp_path: str) -> None:
        try:
            if self.fs.exists(tmp_path):
                self.fs.rm_file(tmp_path)
        except Exception:  # best effort: list() hides temps anyway
            pass

    def _decide(self, key: str, *, size: int, digest: Callable[[], str], overwrite: bool,
                same: Callable[[bytes], bool] | None = None) -> bool:
        """True if ``key`` must be written; False if identical content is stored."""
        if not self.exists(key):
            return True
        if self.size(key) == size and self.sha256(key) == digest():
            self.stats.n_unchanged += 1
            return False
        if same is not None and same(self.get_bytes(key)):
            self.stats.n_unchanged += 1
            return False
        if not overwrite:
            raise FileExistsError(
                f"store object {key!r} already exists with different content "
                f"(store {self.url}); pass overwrite=True to replace it"
            )
        return True

    def _write(self, key: str, writer: Callable[[str], None]) -> None:
        final = self.path(key)
        tmp = self._temp_path(key)
        self._prepare_parent(final)
        try:
            writer(tmp)
            self._finalize(tmp, final)
        except BaseException:
            self._discard(tmp)
            raise
        self.stats.n_writes += 1

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = False,
                  same: Callable[[bytes], bool] | None = None) -> bool:
        """Store ``data`` at ``key`` (write-then-finalize). Returns True if written.

        Identical bytes already stored: nothing is written, returns False.
        Different bytes: FileExistsError unless ``overwrite``. ``same``, if
        given, is asked whether differing stored bytes are equivalent anyway
        (e.g. the same table written by another library version).
        """
        data = bytes(data)
        if not self._decide(key, size=len(data), digest=lambda: checksum_bytes(data),
                            overwrite=overwrite, same=same):
            return False
        self._write(key, lambda tmp: self.fs.pipe_file(tmp, data))
        return True

    def put_file(self, key: str, local_path: str | os.PathLike[str], *,
                 overwrite: bool = False) -> bool:
        """Upload a local file to ``key`` (streamed; same semantics as put_bytes)."""
        src = Path(local_path)
        if not src.is_file():
            raise FileNotFoundError(f"no local file {src}")

        def digest() -> str:
            h = hashlib.sha256()
            with open(src, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
            return h.hexdigest()

        if not self._decide(key, size=src.stat().st_size, digest=digest, overwrite=overwrite):
            return False
        self._write(key, lambda tmp: self.fs.put_file(str(src), tmp))
        return True

    def put_json(self, key: str, obj: Any, *, overwrite: bool = False) -> bool:
        """Store ``obj`` as canonical JSON (sorted keys, indent 2, no NaN)."""
        text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"

        def same(stored: bytes) -> bool:
            try:
                return json.loads(stored) == json.loads(text)
            except ValueError:
                return False

        return self.put_bytes(key, text.encode(), overwrite=overwrite, same=same)

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def put_parquet(self, key: str, df: pd.DataFrame, *, overwrite: bool = False) -> bool:
        """Store a DataFrame as Parquet (pyarrow). Equal tables count as identical
        even if the bytes differ (e.g. written by another pyarrow version)."""
        import pandas as pd

        buf = io.BytesIO()
        df.to_parquet(buf, engine="pyarrow")
        data = buf.getvalue()

        def same(stored: bytes) -> bool:
            try:
                old = pd.read_parquet(io.BytesIO(stored), engine="pyarrow")
            except Exception:  # unreadable -> not the same
                return False
            new = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
            try:
                pd.testing.assert_frame_equal(old, new, check_exact=True)
            except AssertionError:
                return False
            return True

        return self.put_bytes(key, data, overwrite=overwrite, same=same)

    def get_parquet(self, key: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.get_bytes(key)), engine="pyarrow")

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` holding ``data`` only if it does not exist; True if created.

        Atomic where the store allows it: ``O_CREAT | O_EXCL`` on local disk, an
        ``If-None-Match: *`` conditional PUT on S3 (s3fs ``mode="create"``);
        other file systems check then write. Callers put a unique token in
        ``data`` (the lock does): a refusal of an object holding exactly ``data``
        is our own earlier attempt whose answer was lost, and counts as created.
        """
        path = self.path(key)
        if self._is_local:
            self._prepare_parent(path)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.stats.n_writes += 1
            return True
        if "s3" in _protocols(self.fs) or "s3a" in _protocols(self.fs):
            try:
                self.fs.pipe_file(path, data, mode="create")
            except (FileExistsError, OSError) as exc:
                if isinstance(exc, FileExistsError) or _precondition_failed(exc):
                    # a retried PUT whose first attempt took effect (its answer was lost)
                    # is refused by its own write: the object then holds exactly ``data``
                    self._fresh(path)
                    try:
                        mine = self.fs.cat_file(path) == data
                    except FileNotFoundError:
                        mine = False
                    if mine:
                        self.stats.n_writes += 1
                    return mine
                raise
            self._fresh(path)
            self.stats.n_writes += 1
            return True
        if self.exists(key):
            return False
        self.fs.pipe_file(path, data)
        self.stats.n_writes += 1
        return True

    def lock(self, name: str, *, ttl_s: float = 900.0, timeout_s: float = 1800.0,
             poll_s: float = 0.5):
        """Context manager holding the store-wide lock ``name`` (:meth:`create_exclusive`).

        A lock older than ``ttl_s`` is taken to be left by a killed holder and is
        broken. Raises TimeoutError after ``timeout_s``.
        """
        import contextlib
        import random

        key = object_key("lock", name=name)
        token = uuid.uuid4().hex

        @contextlib.contextmanager
        def held():
            start = time.monotonic()
            delay = poll_s
            while not self.create_exclusive(
                    key, json.dumps({"token": token, "utc": _utc_now()}).encode()):
                try:
                    stale = self.get_bytes(key)
                    age = time.time() - self.fs.modified(self.path(key)).timestamp()
                except (FileNotFoundError, NotImplementedError, OSError):
                    stale, age = b"", 0.0
                if age > ttl_s:
                    # left by a killed holder: break it, unless another waiter broke it
                    # and took the lock meanwhile (its token differs)
                    with contextlib.suppress(FileNotFoundError, OSError):
                        if self.get_bytes(key) == stale:
                            self.delete(key)
                    continue
                if time.monotonic() - start > timeout_s:
                    raise TimeoutError(f"store lock {key!r} still held after {timeout_s:.0f} s "
                                       f"(store {self.url})")
                time.sleep(delay * (0.5 + random.random()))
                delay = min(2 * delay, 5.0)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    if json.loads(self.get_bytes(key)).get("token") == token:
                        self.fs.rm_file(self.path(key))
                        self._fresh(self.path(key))

        return held()

    def delete(self, key: str) -> bool:
        """Remove ``key``; False if it was not there."""
        path = self.path(key)
        if not self.exists(key):
            return False
        self.fs.rm_file(path)
        self._fresh(path)
        self.stats.n_deletes += 1
        return True


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def quarantine(store: Store, *, stage: str, name: str, reason: str,
               payload_key: str | None = None, payload_bytes: bytes | None = None,
               filename: str | None = None) -> str:
    """Set a bad object aside with the reason; returns the record key.

    Writes ``quarantine/{stage}/{name}.json`` (stage, name, reason, utc,
    source key, payload key, sha256) and copies the bad object to
    ``quarantine/{stage}/{name}/{filename}``: ``payload_bytes`` if given, else
    the stored object at ``payload_key``. ``filename`` defaults to the base
    name of ``payload_key``, else ``payload.bin``. Idempotent: quarantining
    the same thing again writes nothing (the first ``utc`` is kept); a new
    reason or payload replaces the old one.
    """
    record_key = object_key("quarantine", stage=stage, name=name)
    data = payload_bytes
    missing = False
    if data is None and payload_key is not None:
        try:
            data = store.get_bytes(payload_key)
        except FileNotFoundError:
            missing = True
    object_k = None
    if data is not None:
        fname = filename or (payload_key.rsplit("/", 1)[-1] if payload_key else "payload.bin")
        object_k = object_key("quarantine_object", stage=stage, name=name, filename=fname)
        store.put_bytes(object_k, data, overwrite=True)
    record = {
        "stage": stage,
        "name": name,
        "reason": reason,
        "source_key": payload_key,
        "payload_key": object_k,
        "payload_sha256": checksum_bytes(data) if data is not None else None,
        "payload_missing": missing,
    }
    if store.exists(record_key):
        try:
            old = store.get_json(record_key)
        except ValueError:
            old = None
        if isinstance(old, dict) and {k: old.get(k) for k in record} == record:
            store.stats.n_unchanged += 1
            return record_key
    store.put_json(record_key, {**record, "utc": _utc_now()}, overwrite=True)
    return record_key
