"""Settings: precedence (argument > environment > config file > default), secrets, storage options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from iovolc import s3retry
from iovolc.settings import (
    Settings,
    config_path,
    load_settings,
    merge_storage_options,
    settings_hash,
)

SECRET = "s3cr3t-DO-NOT-PRINT"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No IOVOLC_*/AWS_* from the outside, an empty cwd and an empty HOME."""
    for name in list(os.environ):
        if name.startswith("IOVOLC_") or name in (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"
        ):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home, work


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(_isolated):
    home, work = _isolated
    s = load_settings()
    assert s.archive_url == "" and s.kernels_url == ""
    assert s.store_url == f"file://{work}/iovolc-store"
    assert s.s3_endpoint_url is None and s.dask_address is None
    assert s.cache_dir == home / ".cache" / "iovolc"
    assert s.work_pool == "iovolc-process"
    assert s.max_concurrency == 2


def test_precedence_argument_env_file_default(monkeypatch, _isolated):
    home, work = _isolated
    cfg = _write(work / "iovolc.toml", 'work_pool = "from-file"\nmax_concurrency = 3\n'
                 'dask_address = "tcp://file:8786"\narchive_url = "s3://file-archive"\n')
    assert config_path() == cfg
    s = load_settings()
    assert (s.work_pool, s.max_concurrency, s.dask_address) == ("from-file", 3, "tcp://file:8786")
    assert s.kernels_url == ""  # default where nobody says anything

    monkeypatch.setenv("IOVOLC_WORK_POOL", "from-env")
    monkeypatch.setenv("IOVOLC_MAX_CONCURRENCY", "5")
    s = load_settings()
    assert (s.work_pool, s.max_concurrency) == ("from-env", 5)
    assert s.archive_url == "s3://file-archive"  # file still applies where env is silent

    s = load_settings(work_pool="from-arg", max_concurrency=None, archive_url="")
    assert s.work_pool == "from-arg"  # argument beats env
    assert s.max_concurrency == 5  # None override is ignored
    assert s.archive_url == ""  # "" is a value: none


def test_settings_are_resolved_at_call_time(monkeypatch):
    assert load_settings().work_pool == "iovolc-process"
    monkeypatch.setenv("IOVOLC_WORK_POOL", "later")
    assert load_settings().work_pool == "later"


def test_config_file_search_order(monkeypatch, _isolated):
    home, work = _isolated
    user = _write(home / ".config" / "iovolc" / "config.toml", 'work_pool = "user"\n')
    assert load_settings().work_pool == "user"
    local = _write(work / "iovolc.toml", 'work_pool = "local"\n')
    assert config_path() == local
    assert load_settings().work_pool == "local"
    explicit = _write(work / "other" / "mine.toml", 'work_pool = "explicit"\n')
    monkeypatch.setenv("IOVOLC_CONFIG", str(explicit))
    assert load_settings().work_pool == "explicit"
    monkeypatch.setenv("IOVOLC_CONFIG", str(work / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_settings()
    assert user.is_file()


def test_relative_paths_in_file_resolve_against_the_file(monkeypatch, _isolated):
    home, work = _isolated
    cfg = _write(work / "conf" / "c.toml", 'store_url = "store"\ncache_dir = "cache"\n'
                 'kernels_url = "~/kernels"\n')
    monkeypatch.setenv("IOVOLC_CONFIG", str(cfg))
    s = load_settings(archive_url="arch")
    assert s.store_url == f"file://{work}/conf/store"
    assert s.cache_dir == work / "conf" / "cache"
    assert s.kernels_url == f"file://{home}/kernels"
    assert s.archive_url == f"file://{work}/arch"  # argument: relative to cwd


def test_unknown_keys_and_bad_values(monkeypatch, _isolated):
    home, work = _isolated
    _write(work / "iovolc.toml", f'aws_secret_access_key = "{SECRET}"\n')
    with pytest.raises(ValueError, match="aws_secret_access_key") as exc:
        load_settings()
    assert SECRET not in str(exc.value)
    (work / "iovolc.toml").unlink()
    with pytest.raises(TypeError, match="nope"):
        load_settings(nope=1)
    with pytest.raises(ValidationError):
        load_settings(max_concurrency=0)
    with pytest.raises(ValidationError):
        load_settings(s3_endpoint_url="127.0.0.1:9000")
    monkeypatch.setenv("IOVOLC_MAX_CONCURRENCY", "many")
    with pytest.raises(ValidationError):
        load_settings()


def test_empty_env_clears_optional_fields(monkeypatch, _isolated):
    home, work = _isolated
    _write(work / "iovolc.toml", 'dask_address = "tcp://x:1"\ns3_endpoint_url = "http://h:1"\n')
    monkeypatch.setenv("IOVOLC_DASK_ADDRESS", "")
    monkeypatch.setenv("IOVOLC_S3_ENDPOINT_URL", "")
    s = load_settings()
    assert s.dask_address is None and s.s3_endpoint_url is None


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(ValidationError):
        s.work_pool = "x"  # type: ignore[misc]


def test_secrets_never_in_repr_or_dump(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SECRET + "-token")
    s = load_settings(store_url="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:9000")
    for text in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert SECRET not in text and "AKIDEXAMPLE" not in text
    assert not {"key", "secret", "token"} & set(s.model_dump())
    # ...but the storage options for an s3 URL carry them, read at call time
    opts = s.storage_options("s3://bucket/prefix")
    assert opts == {
        "config_kwargs": s3retry.config_kwargs(),
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"},
        "key": "AKIDEXAMPLE",
        "secret": SECRET,
        "token": SECRET + "-token",
    }
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotated")
    assert s.storage_options("s3://bucket")["secret"] == "rotated"


def test_password_in_url_rejected_without_echo():
    with pytest.raises(ValidationError) as exc:
        load_settings(archive_url=f"https://user:{SECRET}@example.org/jiram")
    assert SECRET not in str(exc.value)


def test_storage_options_per_protocol(monkeypatch):
    s = load_settings(s3_endpoint_url="http://127.0.0.1:8333")
    assert s.storage_options("s3://bucket/x") == {
        "config_kwargs": s3retry.config_kwargs(),
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:8333"},
    }
    assert "region_name" not in s.storage_options("s3://bucket/x")["client_kwargs"]
    for url in ("file:///tmp/x", "memory://x", "https://example.org/a", "/tmp/plain"):
        assert s.storage_options(url) == {}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SK")
    no_endpoint = load_settings()
    assert no_endpoint.storage_options("s3://b") == {
        "config_kwargs": s3retry.config_kwargs(), "key": "AK", "secret": "SK"}
    assert no_endpoint.storage_options("memory://b") == {}


def test_fs_resolves_url(tmp_path):
    s = load_settings()
    fs, path = s.fs(f"file://{tmp_path}/a")
    assert path == f"{tmp_path}/a"
    assert "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    fs, path = s.fs("memory://settings-test/x")
    assert path == "/settings-test/x"


def test_s3_storage_options_carry_the_retry_policy():
    """Timeouts and botocore retries off in the options (JSON-serialisable, so a
    Prefect block can hold them); s3fs's retries installed process-wide."""
    import json

    import s3fs.core

    opts = load_settings().storage_options("s3://bucket/x")
    cfg = opts["config_kwargs"]
    assert cfg["connect_timeout"] == s3retry.CONNECT_TIMEOUT_S
    assert cfg["read_timeout"] == s3retry.READ_TIMEOUT_S
    assert cfg["retries"] == {"mode": "standard", "total_max_attempts": 1}
    assert json.loads(json.dumps(opts)) == opts
    assert s3fs.core.S3FileSystem.retries >= s3retry.RETRIES
    # the options build a working client config
    from aiobotocore.config import AioConfig

    AioConfig(**cfg)


def test_s3_retryable_errors():
    from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

    def client_error(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    for status, code in ((500, "InternalError"), (503, "SlowDown"), (503, "503"),
                         (502, "BadGateway"), (400, "RequestTimeout")):
        assert s3retry.is_retryable(client_error(status, code)), (status, code)
    for status, code in ((403, "AccessDenied"), (404, "NoSuchKey"), (412, "PreconditionFailed"),
                         (400, "InvalidArgument")):
        assert not s3retry.is_retryable(client_error(status, code)), (status, code)
    assert s3retry.is_retryable(EndpointConnectionError(endpoint_url="http://x"))
    assert not s3retry.is_retryable(SSLError(endpoint_url="http://x", error="bad cert"))
    assert not s3retry.is_retryable(ValueError("x"))


def test_merge_storage_options_merges_client_kwargs():
    merged = merge_storage_options(
        {"client_kwargs": {"endpoint_url": "http://a"}, "key": "k"},
        {"client_kwargs": {"verify": False}, "key": "k2"},
    )
    assert merged == {"client_kwargs": {"endpoint_url": "http://a", "verify": False}, "key": "k2"}
    merged = merge_storage_options({"config_kwargs": {"read_timeout": 15, "connect_timeout": 5}},
                                   {"config_kwargs": {"read_timeout": 60}})
    assert merged == {"config_kwargs": {"read_timeout": 60, "connect_timeout": 5}}


def test_settings_hash_covers_result_fields_only(tmp_path):
    base = load_settings(archive_url="s3://arch", kernels_url="s3://kern")
    h = settings_hash(base)
    assert len(h) == 64 and int(h, 16) >= 0
    same = load_settings(archive_url="s3://arch", kernels_url="s3://kern",
                         store_url="s3://elsewhere", cache_dir=str(tmp_path),
                         work_pool="other", dask_address="tcp://d:1", max_concurrency=7,
                         s3_endpoint_url="http://127.0.0.1:1")
    assert settings_hash(same) == h
    assert settings_hash(load_settings(archive_url="s3://other", kernels_url="s3://kern")) != h
    assert settings_hash(load_settings(archive_url="s3://arch")) != h
    # a mapping is read like Settings; extra keys (even secrets) are ignored
    assert settings_hash({"archive_url": "s3://arch", "kernels_url": "s3://kern",
                          "secret": SECRET, "cache_dir": "/x"}) == h
    assert settings_hash({}) == settings_hash(Settings())
    with pytest.raises(TypeError):
        settings_hash(42)  # type: ignore[arg-type]
