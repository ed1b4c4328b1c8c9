"""The CLI's request handling: settings resolution, one-line errors, exit codes.

Each case fails before any work, so a folder holding empty volume directories
is archive enough (the volume listing is all that is read).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from iovolc.cli import main


@pytest.fixture()
def archive(tmp_path):
    root = tmp_path / "archive"
    for vol in ("JNOJIR_1057", "JNOJIR_2057", "JNOJIR_2058", "JNOJIR_2060"):
        (root / vol).mkdir(parents=True)
    (tmp_path / "kernels").mkdir()
    return root


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("IOVOLC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no iovolc.toml around


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_perijove_without_data_says_what_the_archive_holds(archive, tmp_path, capsys):
    code = main(["run", "--perijove", "999", "--archive", archive.as_uri(),
                 "--kernels", (tmp_path / "kernels").as_uri(),
                 "--store", (tmp_path / "store").as_uri()])
    line = _one_line(capsys.readouterr().err)
    assert code == 2
    assert "no volume for PJ 999" in line and "orbits 57-58,60" in line, line
    assert not (tmp_path / "store").exists()  # nothing was done


def test_settings_from_the_environment(archive, tmp_path, monkeypatch, capsys):
    """No --archive/--kernels/--store: IOVOLC_*_URL are used (argument > env > file)."""
    monkeypatch.setenv("IOVOLC_ARCHIVE_URL", archive.as_uri())
    monkeypatch.setenv("IOVOLC_KERNELS_URL", (tmp_path / "kernels").as_uri())
    monkeypatch.setenv("IOVOLC_STORE_URL", (tmp_path / "store").as_uri())
    assert main(["run", "--perijove", "999"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "no volume for PJ 999" in line and archive.as_uri() in line, line
    # the argument wins over the environment
    other = tmp_path / "other"
    (other / "JNOJIR_2061").mkdir(parents=True)
    assert main(["run", "--perijove", "999", "--archive", other.as_uri()]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "orbits 61" in line and other.as_uri() in line, line


def test_settings_from_the_config_file(archive, tmp_path, monkeypatch, capsys):
    (tmp_path / "iovolc.toml").write_text(
        f'archive_url = "{archive.as_uri()}"\nkernels_url = "{(tmp_path / "kernels").as_uri()}"\n'
        f'store_url = "{(tmp_path / "store").as_uri()}"\n')
    assert main(["run", "--perijove", "998"]) == 2
    assert "orbits 57-58,60" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("store, words", [
    ("s3://bucket/a/../b", "'..' path segments"),
    ("s3://B_/x", "not a valid S3 bucket name"),
    ("ftp://host/x", "scheme 'ftp' is not supported"),
])
def test_invalid_store_url_refused_before_any_work(archive, tmp_path, capsys, store, words):
    code = main(["run", "--perijove", "57", "--archive", archive.as_uri(),
                 "--kernels", (tmp_path / "kernels").as_uri(), "--store", store])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and words in line and store in line, line


def test_missing_archive_is_one_line(tmp_path, capsys):
    missing = (tmp_path / "nowhere").as_uri()
    code = main(["run", "--perijove", "57", "--archive", missing,
                 "--kernels", (tmp_path / "kernels").as_uri(),
                 "--store", (tmp_path / "store").as_uri()])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "not found" in line and "nowhere" in line, line


def test_missing_archive_setting_names_the_ways_to_give_it(tmp_path, capsys):
    assert main(["run", "--perijove", "57"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--archive" in line and "IOVOLC_ARCHIVE_URL" in line, line


def test_usage_errors_exit_2_and_debug_shows_the_traceback(archive, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOVOLC_")}
    args = ["run", "--perijove", "999", "--archive", archive.as_uri(),
            "--kernels", (tmp_path / "kernels").as_uri(), "--store", (tmp_path / "s").as_uri()]
    plain = subprocess.run([sys.executable, "-m", "iovolc.cli", *args], capture_output=True,
                           text=True, env=env, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "iovolc.cli", "--debug", *args],
                           capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    bad = subprocess.run([sys.executable, "-m", "iovolc.cli", "run", "--perijove", "x"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "perijove" in bad.stderr


def test_help_reads_well():
    out = subprocess.run([sys.executable, "-m", "iovolc.cli", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for word in ("demo", "run", "simulate", "argument > environment", "--debug"):
        assert word in out.stdout, out.stdout



_PREFECT_START = r"""
import json
import subprocess
import sys

from prefect import flow
from prefect.server.api.server import SubprocessASGIServer

from flows.local_api import TemporaryApiStart

real_launch = SubprocessASGIServer._run_uvicorn_command
launched = []


def counted_launch(self):  # every server process Prefect launches, for the checks below
    proc = real_launch(self)
    launched.append(proc)
    return proc


def silent_launch(self):  # a "server" that never answers: the start must time out
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    launched.append(proc)
    return proc


mode = sys.argv[1]
SubprocessASGIServer._run_uvicorn_command = silent_launch if mode == "fails" else counted_launch
start = TemporaryApiStart()
start.start()
start.join()
out = {"seconds": start.seconds, "error": start.error, "launched": len(launched),
       "left_running": sum(p.poll() is None for p in launched),
       "instance": None in SubprocessASGIServer._instances}
SubprocessASGIServer._run_uvicorn_command = counted_launch


@flow
def one() -> int:
    return 1


if mode != "configured":
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as TIMEOUT
    from prefect.settings import temporary_settings

    with temporary_settings(updates={TIMEOUT: 60}):  # "fails" gave the thread 1 s
        out["flow"] = one()  # the demo's first flow run, on the server started (or not) above
    out["launched_after_flow"] = len(launched)
    SubprocessASGIServer().stop()
    out["left_running_at_end"] = sum(p.poll() is None for p in launched)
print(json.dumps(out))
"""


def _prefect_start(tmp_path, mode: str, **env) -> dict:
    import json

    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    clean.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                 **env)
    res = subprocess.run([sys.executable, "-c", _PREFECT_START, mode], env=clean,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_the_demo_starts_prefects_temporary_api_beside_the_simulator(tmp_path):
    """iovolc demo starts Prefect's temporary API in a thread while it simulates (stop 41):
    one server process, and the first flow run uses it instead of launching another."""
    out = _prefect_start(tmp_path, "starts")
    assert out["error"] is None and out["seconds"] > 0
    assert out["launched"] == 1 and out["left_running"] == 1 and out["instance"]
    assert out["flow"] == 1 and out["launched_after_flow"] == 1
    assert out["left_running_at_end"] == 0


def test_a_failed_temporary_api_start_leaves_no_server_behind(tmp_path):
    """A start that times out is reported, its server process is stopped and forgotten,
    and the first flow run starts a new one (review of stop 41: Prefect leaves the
    process of a timed-out start running, and a second start on its port ran the flows
    against that orphan, which nothing stopped at exit)."""
    out = _prefect_start(tmp_path, "fails",
                         PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    assert out["seconds"] is None and "RuntimeError" in out["error"]
    assert out["launched"] == 1 and out["left_running"] == 0 and not out["instance"]
    assert out["flow"] == 1 and out["launched_after_flow"] == 2
    assert out["left_running_at_end"] == 0


def test_the_demo_starts_no_temporary_api_when_one_is_configured(tmp_path):
    """With ``PREFECT_API_URL`` set (the user's own server) the demo starts nothing."""
    out = _prefect_start(tmp_path, "configured", PREFECT_API_URL="http://127.0.0.1:9/api")
    assert out == {"seconds": None, "error": None, "launched": 0, "left_running": 0,
                   "instance": False}
