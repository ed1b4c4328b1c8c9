"""Screenshots of the Prefect UI page of a launched ``process-perijove`` run.

Regenerate (about 3 minutes on 2 cores; no network needed)::

    uv run python docs/screenshots/capture.py

What it does, all inside one temporary folder that is removed at the end:

1. starts a real Prefect server (``prefect server start``) on 127.0.0.1 and a
   free port, with its own ``PREFECT_HOME`` (nothing shared is touched);
2. simulates a small PJ57 downlink (12 frames per pass, seed 1);
3. runs ``process_perijove`` -- the flow a user launches -- against that
   server, with a local store and cache in the temporary folder;
4. opens the run in headless Chromium (Debian ``/usr/bin/chromium`` driven by
   Playwright) and writes the PNGs listed in ``SHOTS`` next to this script;
5. checks that the map image of the ``map`` artifact really renders (an
   ``<img>`` with ``naturalWidth > 0``) in both the default UI and the V2 UI,
   and exits non-zero if it does not;
6. stops the server it started (also on error or Ctrl-C).

Screenshots above ``MAX_BYTES`` are reduced to a 256-colour palette (and
downscaled if still too big) so the repository stays small.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}
MAX_BYTES = 400_000
#: screenshots taken wider than VIEWPORT (the hotspot table has ten columns)
WIDE = {"hotspots_artifact.png": 2200}

#: file name -> what it shows (also written to README.md beside the PNGs)
SHOTS = {
    "run_page.png": "The launched run `pj[57]` of `process-perijove`: state, run graph of the "
                    "four stage subflows, the tabs.",
    "run_artifacts.png": "Same page, Artifacts tab: the six artifacts created on the launched "
                         "run (map, catalog link, qa-summary, hotspots, catalog-diff, alerts).",
    "map_artifact.png": "The `map` artifact's page: the hotspot map over the USGS Io basemap, "
                        "rendered from the markdown's embedded PNG.",
    "map_artifact_v2.png": "The same `map` artifact in Prefect's V2 UI (`/v2/...`).",
    "hotspots_artifact.png": "The `hotspots` table artifact: key columns, every row. Shot "
                             "2200 px wide so all ten columns show: the UI does not wrap cells "
                             "and the table is ~1550 px wide, so narrower windows scroll it "
                             "sideways (flag_names, then median_temperature_k).",
    "qa_summary_artifact.png": "The `qa-summary` artifact: frames in/out per perijove, "
                               "pointing methods, detections, quarantined products, catalog.",
    "catalog_artifact.png": "The `catalog` link artifact: link to the catalog's HTML page.",
    "catalog_diff_artifact.png": "The `catalog-diff` artifact: what changed in this version.",
    "alerts_artifact.png": "The `alerts` artifact: new hotspots and brightenings.",
}
#: artifact key -> screenshot of its page
ARTIFACT_SHOTS = {"map": "map_artifact.png", "hotspots": "hotspots_artifact.png",
                  "qa-summary": "qa_summary_artifact.png", "catalog": "catalog_artifact.png",
                  "catalog-diff": "catalog_diff_artifact.png", "alerts": "alerts_artifact.png"}


def log(msg: str) -> None:
    print(f"[capture {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without inherited Prefect/iovolc settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "IOVOLC_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def run_python(code: str, env: dict[str, str], log_path: Path) -> str:
    """Run ``code`` in this interpreter (a child process); its stdout, or raise."""
    with open(log_path, "w") as err:
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=err, text=True)
    if out.returncode:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"child failed ({out.returncode}); log {log_path}:\n{tail}")
    return out.stdout


class PrefectServer:
    """``prefect server start`` in its own process group; stopped on exit."""

    def __init__(self, home: Path, port: int, log_path: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.api = self.url + "/api"
        self.home, self.port, self.log_path = home, port, log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PrefectServer:
        prefect = Path(sys.executable).with_name("prefect")
        # the UI must be told where the API is (it defaults to port 4200)
        env = clean_env(PREFECT_HOME=str(self.home), PREFECT_UI_API_URL=self.api)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.home, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)  # own process group: stop() ends it and its children
        log(f"server pid {self.proc.pid} on {self.url}")
        try:
            self._wait_healthy(timeout=180)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(self.api + "/health", timeout=5) as r:
                    if r.read().strip() == b"true":
                        log(f"server healthy after {time.monotonic() - t0:.0f} s")
                        return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"server not healthy after {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # the group this script created (start_new_session)
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        log("server stopped")

    def __exit__(self, *exc) -> None:
        self.stop()

    def post(self, path: str, body: dict) -> list | dict:
        req = urllib.request.Request(self.api + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def simulate(tmp: Path, perijove: int, frames_per_pass: int, seed: int) -> Path:
    out = tmp / "dl"
    run_python(f"""
        from iovolc.sim.downlink import simulate
        from iovolc.sim.scenario import scenario_for
        simulate(scenario_for([{perijove}], seed={seed}, frames_per_pass={frames_per_pass}),
                 out_dir={str(out)!r}, seed={seed})
        """, clean_env(), tmp / "simulate.log")
    return out


def launch_run(server: PrefectServer, tmp: Path, dl: Path, perijove: int) -> str:
    """Run process_perijove against the server as a user would; its flow run id."""
    env = clean_env(PREFECT_HOME=str(server.home), PREFECT_API_URL=server.api,
                    IOVOLC_CACHE_DIR=str(tmp / "cache"))
    out = run_python(f"""
        from flows.params import PerijoveParams, Sources
        from flows.perijove import process_perijove
        params = PerijoveParams(perijoves=[{perijove}], sources=Sources(
            archive_url={(dl / "archive").as_uri()!r}, kernels_url={(dl / "kernels").as_uri()!r},
            store_url={(tmp / "store").as_uri()!r}))
        state = process_perijove(params, return_state=True)
        print("RUN", state.type.value, state.state_details.flow_run_id)
        """, env, tmp / "flow.log")
    line = [ln for ln in out.splitlines() if ln.startswith("RUN ")][-1]
    _, state, run_id = line.split()
    if state != "COMPLETED":
        raise RuntimeError(f"flow run {run_id} ended {state}; see {tmp / 'flow.log'}")
    return run_id


def shrink_png(path: Path) -> None:
    """Keep a screenshot under MAX_BYTES: palette first, then downscale."""
    from PIL import Image

    if path.stat().st_size <= MAX_BYTES:
        return
    img = Image.open(path).convert("RGB")
    for scale in (1.0, 0.85, 0.7, 0.6, 0.5):
        im = img if scale == 1.0 else img.resize(
            (round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        buf = io.BytesIO()
        im.quantize(256, method=Image.Quantize.FASTOCTREE).save(buf, "PNG", optimize=True)
        if buf.tell() <= MAX_BYTES or scale == 0.5:
            path.write_bytes(buf.getvalue())
            return


#: how much of the page its scrolling panes hide vertically (px)
HIDDEN_HEIGHT_JS = """() => Math.max(0, ...Array.from(document.querySelectorAll('*'))
    .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowY))
    .map(e => e.scrollHeight - e.clientHeight))"""

MAP_IMG_JS = """() => Array.from(document.images)
    .filter(i => i.alt === 'hotspot map' || i.src.startsWith('data:image/png'))
    .map(i => ({src: i.src.slice(0, 40), complete: i.complete, naturalWidth: i.naturalWidth,
                naturalHeight: i.naturalHeight, alt: i.alt}))"""


def map_rendered(page, timeout_ms: int = 30_000) -> list[dict]:
    """The map <img> elements on ``page`` once loaded ([] if none appeared)."""
    try:
        page.wait_for_function(
            "() => Array.from(document.images).some(i => (i.alt === 'hotspot map' || "
            "i.src.startsWith('data:image/png')) && i.complete && i.naturalWidth > 0)",
            timeout=timeout_ms)
    except Exception:  # noqa: BLE001 -- reported as not rendered below
        pass
    return page.evaluate(MAP_IMG_JS)


def capture(server: PrefectServer, run_id: str, out_dir: Path) -> dict:
    from playwright.sync_api import sync_playwright

    arts = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    by_key = {a["key"]: a for a in arts if a.get("key")}
    missing = set(ARTIFACT_SHOTS) - set(by_key)
    if missing:
        raise RuntimeError(f"artifacts missing on run {run_id}: {sorted(missing)}")
    report: dict = {"flow_run_id": run_id,
                    "artifacts": {k: {"id": a["id"], "type": a["type"]}
                                  for k, a in sorted(by_key.items())}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)

            def shot(name: str) -> None:
                time.sleep(1.0)  # let transitions and the run graph settle
                # the UI scrolls inside a pane, so "full page" alone stops at the
                # viewport: grow the viewport by what the pane hides, shoot, restore
                width, height = WIDE.get(name, VIEWPORT["width"]), VIEWPORT["height"]
                page.set_viewport_size({"width": width, "height": height})
                for _ in range(6):  # until nothing is hidden (layout may reflow)
                    time.sleep(0.5)
                    hidden = page.evaluate(HIDDEN_HEIGHT_JS)
                    if hidden <= 0:
                        break
                    height += hidden
                    page.set_viewport_size({"width": width, "height": height})
                page.screenshot(path=out_dir / name, full_page=True)
                page.set_viewport_size(VIEWPORT)
                shrink_png(out_dir / name)
                log(f"wrote {name} ({(out_dir / name).stat().st_size // 1000} kB)")

            page.goto(f"{server.url}/runs/flow-run/{run_id}", wait_until="networkidle")
            artifacts_tab = page.get_by_text("Artifacts", exact=True).first  # the tab bar
            artifacts_tab.wait_for()
            page.locator("canvas").first.wait_for()  # the run graph (drawn, not in the DOM)
            page.wait_for_load_state("networkidle")
            time.sleep(3)
            shot("run_page.png")
            artifacts_tab.click()
            page.get_by_text("qa-summary", exact=True).first.wait_for()
            page.wait_for_load_state("networkidle")
            shot("run_artifacts.png")

            for key, name in ARTIFACT_SHOTS.items():
                page.goto(f"{server.url}/artifacts/artifact/{by_key[key]['id']}",
                          wait_until="networkidle")
                page.locator(".artifact-description, .markdown-renderer, table").first.wait_for()
                if key == "map":
                    report["map_v1"] = map_rendered(page)
                shot(name)

            page.goto(f"{server.url}/v2/artifacts/artifact/{by_key['map']['id']}",
                      wait_until="networkidle")
            report["map_v2"] = map_rendered(page)
            shot("map_artifact_v2.png")
        finally:
            browser.close()
    return report


def write_readme(out_dir: Path, report: dict) -> None:
    def ok(imgs: list[dict]) -> str:
        return ", ".join(f"naturalWidth {i['naturalWidth']} x {i['naturalHeight']}"
                         for i in imgs) or "no map <img> found"

    lines = ["# Prefect UI screenshots of a launched `process-perijove` run", "",
             "Made by `capture.py` (regenerate: `uv run python docs/screenshots/capture.py`):",
             "a real Prefect server, a simulated PJ57 downlink (12 frames per pass, seed 1),",
             "`process_perijove` run against that server, pages shot in headless Chromium",
             "(viewport 1400 x 1000, full page).", "",
             "| file | shows |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in SHOTS.items()]
    lines += ["", "Map image check (the `<img>` of the `map` artifact, measured in the browser):",
              f"- default UI: {ok(report['map_v1'])}",
              f"- V2 UI: {ok(report['map_v2'])}", ""]
    (out_dir / "README.md").write_text("\n".join(lines))


def _interrupt(signum, frame) -> None:
    """SIGTERM (e.g. a timeout) unwinds like Ctrl-C, so the server is stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="where the PNGs go")
    ap.add_argument("--perijove", type=int, default=57)
    ap.add_argument("--frames-per-pass", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="iovolc-shots-"))
    log(f"temporary folder {tmp}")
    try:
        (tmp / "home").mkdir()
        with PrefectServer(tmp / "home", free_port(), tmp / "server.log") as server:
            log("simulating the downlink")
            dl = simulate(tmp, args.perijove, args.frames_per_pass, args.seed)
            log("running process-perijove against the server")
            run_id = launch_run(server, tmp, dl, args.perijove)
            log(f"flow run {run_id}")
            report = capture(server, run_id, args.out)
        write_readme(args.out, report)
        print(json.dumps(report, indent=1))
        rendered = {ui: any(i["naturalWidth"] > 0 for i in report[ui])
                    for ui in ("map_v1", "map_v2")}
        log(f"map rendered: {rendered}")
        return 0 if all(rendered.values()) else 1
    finally:
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
