"""One settings object for the whole product, resolved at call time.

Precedence, highest first::

    explicit argument  >  environment (IOVOLC_*)  >  config file (TOML)  >  default

The config file is ``$IOVOLC_CONFIG`` if that variable is set (it must then
exist), else ``./iovolc.toml`` in the current directory, else
``~/.config/iovolc/config.toml``; the first one found is the only one read.
It holds top-level keys named like the fields (``store_url = "s3://..."``);
an unknown key is an error, so a typo or a credential cannot slip in silently.

Environment variables are ``IOVOLC_`` + the field name in upper case
(``IOVOLC_STORE_URL``, ``IOVOLC_MAX_CONCURRENCY``, ...). A variable set to the
empty string is a value: it clears an optional field (``s3_endpoint_url``,
``dask_address``) and means "none" for ``archive_url``/``kernels_url``.

Local paths given without a scheme (``./store``, ``~/data``) become absolute
``file://`` URLs: relative to the config file's folder for values read from
a file, to the current directory otherwise. So a setting means the same thing
in a Prefect worker whose working directory differs.

Credentials are never settings. S3 credentials come from the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), read
when :meth:`Settings.storage_options` is called, or are passed by the caller
as fsspec storage options; nothing secret is stored in, printed by or dumped
from a :class:`Settings`. URLs with an embedded password are rejected.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.utils import get_protocol
from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "IOVOLC_"
CONFIG_ENV = "IOVOLC_CONFIG"
LOCAL_CONFIG_NAME = "iovolc.toml"

#: fields whose value changes what the pipeline computes (see :func:`settings_hash`);
#: output locations, caches, credentials and execution knobs are deliberately absent.
RESULT_FIELDS = ("archive_url", "kernels_url")

#: fields holding URLs: bare local paths in them are made absolute file:// URLs
_URL_FIELDS = ("archive_url", "kernels_url", "store_url")
_OPTIONAL_FIELDS = ("s3_endpoint_url", "dask_address")
_S3_PROTOCOLS = ("s3", "s3a")
#: storage options holding dicts that :func:`merge_storage_options` merges key by key
_NESTED_OPTIONS = ("client_kwargs", "config_kwargs")


def _default_store_url() -> str:
    return "file://" + str(Path.cwd() / "iovolc-store")


def _default_cache_dir() -> Path:
    return Path("~/.cache/iovolc").expanduser()


def user_config_path() -> Path:
    """``~/.config/iovolc/config.toml`` (the lowest-precedence config file)."""
    return Path.home() / ".config" / "iovolc" / "config.toml"


def _has_scheme(value: str) -> bool:
    return "://" in value


def _normalize_url(value: str, base: Path | None = None) -> str:
    """Bare local path -> absolute ``file://`` URL; URLs are kept as given."""
    if value == "" or _has_scheme(value):
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return "file://" + os.path.normpath(path)


def _check_no_password(value: str) -> str:
    if _has_scheme(value):
        parts = urlsplit(value)
        if parts.password is not None:
            # the message must not echo the value: it holds a secret
            raise ValueError(
                "credentials must not be embedded in a URL setting; "
                "use the environment or storage options"
            )
    return value


class Settings(BaseModel):
    """Resolved product settings (frozen). Build with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    archive_url: str = Field("", description="root of the JIRAM archive volumes; '' = none")
    kernels_url: str = Field("", description="root of the SPICE kernel tree; '' = none")
    store_url: str = Field(default_factory=_default_store_url, description="object store root")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint for s3:// URLs")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="local cache folder")
    work_pool: str = Field("iovolc-process", min_length=1, description="Prefect work pool")
    dask_address: str | None = Field(None, description="Dask scheduler address; None = local")
    max_concurrency: int = Field(2, ge=1, description="parallel tasks per flow run")

    @field_validator(*_URL_FIELDS, mode="after")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_no_password(_normalize_url(value))

    @field_validator(*_OPTIONAL_FIELDS, mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("s3_endpoint_url", mode="after")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("s3_endpoint_url must be an http:// or https:// URL")
        return _check_no_password(value)

    @field_validator("cache_dir", mode="after")
    @classmethod
    def _cache_dir(cls, value: Path) -> Path:
        return Path(os.path.normpath(Path.cwd() / value.expanduser()))

    def storage_options(self, url: str) -> dict[str, Any]:
        """fsspec keyword arguments for ``url``.

        s3: ``{"config_kwargs": ...}`` with the client's timeouts and
        botocore retries off (:func:`iovolc.s3retry.config_kwargs`; s3fs does
        the retrying, installed process-wide by :func:`iovolc.s3retry.install`,
        called here: see that module for what is set and why), plus
        ``{"client_kwargs": {"endpoint_url": ...}}`` when an endpoint is
        set, plus ``key``/``secret``/``token`` from ``AWS_ACCESS_KEY_ID``/
        ``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` as they are *now*.
        No ``region_name``: set ``AWS_DEFAULT_REGION`` instead (s3fs fails
        to create buckets on moto/SeaweedFS with it). Anything else: ``{}``.
        """
        if get_protocol(url) not in _S3_PROTOCOLS:
            return {}
        from iovolc import s3retry

        s3retry.install()
        opts: dict[str, Any] = {"config_kwargs": s3retry.config_kwargs()}
        if self.s3_endpoint_url:
            opts["client_kwargs"] = {"endpoint_url": self.s3_endpoint_url}
        for option, env in (
            ("key", "AWS_ACCESS_KEY_ID"),
            ("secret", "AWS_SECRET_ACCESS_KEY"),
            ("token", "AWS_SESSION_TOKEN"),
        ):
            if os.environ.get(env):
                opts[option] = os.environ[env]
        return opts

    def fs(self, url: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
        """``(filesystem, path)`` for ``url`` via ``fsspec.core.url_to_fs``.

        ``storage_options`` from the caller (e.g. credentials) override the
        settings' ones; ``client_kwargs`` and ``config_kwargs`` are merged key by key.
        """
        opts = merge_storage_options(self.storage_options(url), storage_options)
        return fsspec.core.url_to_fs(url, **opts)


def merge_storage_options(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``; nested ``client_kwargs`` and ``config_kwargs``
    merged key by key, not replaced."""
    out = dict(base)
    for k, v in extra.items():
        if k in _NESTED_OPTIONS and isinstance(out.get(k), Mapping) and isinstance(v, Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def config_path() -> Path | None:
    """The config file that :func:`load_settings` would read now, or None."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV} names a config file that does not exist: {path}")
        return path
    for path in (Path.cwd() / LOCAL_CONFIG_NAME, user_config_path()):
        if path.is_file():
            return path
    return None


def _from_file(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ValueError(
            f"unknown key(s) in config file {path}: {', '.join(unknown)} "
            f"(known: {', '.join(Settings.model_fields)}; credentials are never settings)"
        )
    base = path.resolve().parent
    for name in _URL_FIELDS:
        if isinstance(data.get(name), str):
            data[name] = _normalize_url(data[name], base)
    if isinstance(data.get("cache_dir"), str):
        cache = Path(data["cache_dir"]).expanduser()
        data["cache_dir"] = cache if cache.is_absolute() else base / cache
    return data


def _from_env() -> dict[str, Any]:
    values = {}
    for name in Settings.model_fields:
        env = ENV_PREFIX + name.upper()
        if env in os.environ:
            values[name] = os.environ[env]
    return values


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings now: ``overrides`` > ``IOVOLC_*`` > config file > defaults.

    Overrides whose value is None are ignored (handy for optional CLI flags);
    an unknown override name is a TypeError.
    """
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
    path = config_path()
    values: dict[str, Any] = _from_file(path) if path is not None else {}
    values.update(_from_env())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def settings_hash(settings: Settings | Mapping[str, Any]) -> str:
    """sha256 (hex) of the settings that change results (:data:`RESULT_FIELDS`).

    Locations of outputs and caches (``store_url``, ``cache_dir``), the S3
    endpoint, credentials and execution knobs (``work_pool``,
    ``dask_address``, ``max_concurrency``) are excluded: changing them must
    not invalidate finished work. A mapping is read like a :class:`Settings`
    (missing result fields take their defaults, other keys are ignored).
    """
    if isinstance(settings, Settings):
        source: Mapping[str, Any] = settings.model_dump()
    elif isinstance(settings, Mapping):
        source = settings
    else:
        raise TypeError(f"expected Settings or a mapping, got {type(settings).__name__}")
    picked = {}
    for name in RESULT_FIELDS:
        value = source.get(name, Settings.model_fields[name].default)
        picked[name] = _normalize_url(str(value)) if name in _URL_FIELDS else value
    blob = json.dumps(picked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
