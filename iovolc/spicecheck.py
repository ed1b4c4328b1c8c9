"""Kernels loaded by SPICE in a process of their own: the verdicts of
:class:`iovolc.kernels.KernelVerifier`.

A header check cannot see a truncated SPK or CK, and CSPICE can abort the
whole process on a malformed file, so kernels not verified yet are loaded in
a separate check process, never in a worker's own kernel pool. The process
is long-lived: one per worker process, started at its first job and reused
by every later batch (starting one costs ~0.4 s of imports, paid once per
batch before; a mission ingest had ~140 batches). Each job clears the
check process's pool before and after (``kclear``), so no job sees another's
kernels. If the process dies on a job (CSPICE aborted) or a run of jobs
outruns its time limit, that job fails with the reason (a timeout is
``transient``: it says nothing about the kernel) and the remaining jobs go
to a new process.

Jobs (JSON): ``{"id", "op": "kernel", "path"}`` (load it; DAF structure,
SPK states at each segment's ends and middle, ``spkcov``/``ckcov``
coverage) or ``{"id", "op": "ck_tdb", "ck", "inst", "text"}`` (a CK's
coverage of ``inst`` in TDB through the LSK and SCLK files ``text``). One
JSON line in, one JSON line out.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_DAF_RECORD_BYTES = 1024
_CHILD = "from iovolc.spicecheck import main; main()"


# --- the check process ---------------------------------------------------------------
def _windows(cell) -> list[list[float]]:
    import spiceypy

    return [list(map(float, spiceypy.wnfetd(cell, i))) for i in range(spiceypy.wncard(cell))]


def _spice_message(exc: BaseException) -> str:
    short = getattr(exc, "short", "") or type(exc).__name__
    long = " ".join(str(getattr(exc, "long", "") or exc).split())
    return f"{short} {long}".strip()[:300]


def _daf_check(path: str, suffix: str) -> dict:
    """A DAF kernel's structure and coverage (SPICE calls; kernel pool untouched)."""
    import numpy as np
    import spiceypy

    size = os.path.getsize(path)
    out: dict[str, Any] = {"spk": {}, "ck": {}}
    handle = spiceypy.dafopr(path)
    try:
        nd, ni, _, _, _, free = spiceypy.dafrfr(handle)
        if size % _DAF_RECORD_BYTES:
            return {"error": f"truncated: {size} bytes is not a whole number of "
                             f"{_DAF_RECORD_BYTES}-byte DAF records"}
        if (free - 1) * 8 > size:
            return {"error": f"truncated: its file record says the data run to byte "
                             f"{(free - 1) * 8}, the file has {size}"}
        n_words = nd + (ni + 1) // 2
        spiceypy.dafbfs(handle)
        n = 0
        while spiceypy.daffna():
            n += 1
            summary = spiceypy.dafgs(n_words)
            dc, ic = spiceypy.dafus(summary, nd, ni)
            begin, end = int(ic[-2]), int(ic[-1])
            if not 1 <= begin <= end or end * 8 > size:
                return {"error": f"truncated: segment {n} (id {int(ic[0])}) runs to byte "
                                 f"{end * 8}, the file has {size}"}
            if suffix == ".bsp":
                for et in (dc[0], 0.5 * (dc[0] + dc[1]), dc[1]):
                    _, state, _ = spiceypy.spkpvn(handle, summary, float(et))
                    if not np.all(np.isfinite(state)):
                        return {"error": f"segment {n} (body {int(ic[0])}) gives a non-finite "
                                         f"state at ET {et:.3f}"}
        if n == 0:
            return {"error": "holds no segment"}
    finally:
        spiceypy.dafcls(handle)
    if suffix == ".bsp":
        for body in spiceypy.spkobj(path):
            out["spk"][str(int(body))] = _windows(spiceypy.spkcov(path, int(body)))
    elif suffix == ".bc":
        for inst in spiceypy.ckobj(path):
            out["ck"][str(int(inst))] = _windows(
                spiceypy.ckcov(path, int(inst), False, "INTERVAL", 0.0, "SCLK"))
    return out


def check_job(job: dict) -> dict:
    """One verification job (run in the check process)."""
    import spiceypy

    spiceypy.kclear()
    try:
        if job["op"] == "kernel":
            path = job["path"]
            spiceypy.furnsh(path)  # SPICE must load it
            spiceypy.kclear()
            suffix = Path(path).suffix.lower()
            out = {"error": "", "spk": {}, "ck": {}}
            if suffix in (".bsp", ".bc", ".bpc"):
                out.update(_daf_check(path, suffix))
            return out
        # "ck_tdb": a CK's coverage in TDB through the given LSK + SCLK
        for text in job["text"]:
            spiceypy.furnsh(text)
        cover = spiceypy.ckcov(job["ck"], int(job["inst"]), False, "INTERVAL", 0.0, "TDB")
        return {"error": "", "windows": _windows(cover)}
    except Exception as exc:  # noqa: BLE001 - any failure is the kernel's verdict
        return {"error": f"SPICE cannot use it: {_spice_message(exc)}"}
    finally:
        spiceypy.kclear()


def main() -> None:
    """Entry point of the check process: a JSON job per line on stdin, a JSON answer per
    line on stdout, until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        sys.stdout.write(json.dumps({"id": job["id"], **check_job(job)}) + "\n")
        sys.stdout.flush()


# --- the worker's side -----------------------------------------------------------------
class _Died(Exception):
    """The check process exited (or its pipe broke) before answering."""


class _CheckProcess:
    """This process's check process: started when needed, one job at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.owner = 0
        self.buf = b""
        self.stderr = None
        self.selector: selectors.BaseSelector | None = None
        self.err_at = 0

    def alive(self) -> bool:
        return (self.proc is not None and self.owner == os.getpid()
                and self.proc.poll() is None)

    def start(self) -> None:
        pkg_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [pkg_root, os.environ.get("PYTHONPATH", "")]))}
        if self.stderr is not None:
            self.stderr.close()
        # its stderr goes to a file (a pipe nobody reads could fill and block it); the
        # file's offset is shared with the process, so it is only read with pread here
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout.fileno(), selectors.EVENT_READ)
        self.owner, self.buf, self.err_at = os.getpid(), b"", 0

    def ask(self, job: dict, deadline: float) -> dict:
        """The answer to ``job``; TimeoutError past ``deadline`` (monotonic), _Died."""
        assert self.proc is not None and self.proc.stdin is not None
        self.err_at = os.fstat(self.stderr.fileno()).st_size  # this job's stderr from here
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:  # a broken pipe: it has exited
            raise _Died from exc
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if self.selector.select(left):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise _Died
                    self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            try:
                res = json.loads(line)
            except ValueError:
                continue  # not an answer (something the libraries printed): skipped
            if isinstance(res, dict) and res.get("id") == job["id"]:
                return res

    def last_error_line(self) -> str:
        """The last line the process wrote to stderr during the last job."""
        if self.stderr is None:
            return ""
        fd = self.stderr.fileno()
        size = os.fstat(fd).st_size
        text = os.pread(fd, max(0, size - self.err_at), self.err_at).decode("utf-8", "replace")
        return " ".join(text.strip().splitlines()[-1:])[:200]

    def stop(self) -> int | None:
        """End the process (closing its stdin ends it; killed if it lingers): exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if self.owner != os.getpid():  # inherited through a fork: the parent's to stop
            return None
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
        try:
            rc = proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        if self.selector is not None:
            self.selector.close()
            self.selector = None
        with contextlib.suppress(OSError, ValueError):
            proc.stdout.close()
        return rc

    def kill(self) -> int | None:
        """End the process now: exit code."""
        if self.proc is not None and self.owner == os.getpid() and self.proc.poll() is None:
            self.proc.kill()
        return self.stop()


_PROCESS = _CheckProcess()


def stop() -> None:
    """End this process's check process (the next job starts a new one)."""
    locked = _PROCESS.lock.acquire(timeout=10.0)  # at exit, a stuck run must not hang it
    try:
        _PROCESS.stop()
    finally:
        if locked:
            _PROCESS.lock.release()


atexit.register(stop)


def run_checks(jobs: list[dict], *, timeout_s: float) -> tuple[dict[str, dict], int]:
    """Answers to ``jobs`` by id from this process's check process, and how many check
    processes were started for them (0 when the running one answered everything).

    ``timeout_s`` bounds each process's run of the jobs: past it, the job it is on
    fails (``transient``) and the process is replaced for the rest. A process that
    dies on a job fails that job (CSPICE aborted on it); one found dead at the first
    job of a run had died idle, and the job goes to a new process.
    """
    results: dict[str, dict] = {}
    pending, started = list(jobs), 0
    with _PROCESS.lock:
        while pending:
            reused = _PROCESS.alive()
            if not reused:
                _PROCESS.stop()
                _PROCESS.start()
                started += 1
            deadline = time.monotonic() + timeout_s
            answered = 0
            try:
                while pending:
                    res = _PROCESS.ask(pending[0], deadline)
                    results[str(res.pop("id"))] = res
                    pending.pop(0)
                    answered += 1
            except TimeoutError:
                _PROCESS.kill()
                results[str(pending.pop(0)["id"])] = {
                    "error": f"the SPICE check process died on it (timed out after "
                             f"{timeout_s:g} s)", "transient": True}
            except _Died:
                rc = _PROCESS.kill()
                if reused and not answered:
                    continue  # it had died before this run (killed while idle): not the job's
                last = _PROCESS.last_error_line()
                results[str(pending.pop(0)["id"])] = {
                    "error": f"the SPICE check process died on it (exit code {rc}"
                             f"{': ' + last if last else ''})", "transient": False}
            except BaseException:  # interrupted mid-job: no answer may be left in flight
                _PROCESS.kill()
                raise
    return results, started
