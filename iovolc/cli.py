"""iovolc: Juno JIRAM downlink -> Io volcanic hotspot catalog.

  iovolc demo      simulate a PJ57 downlink, run the four stages, score against the truth
  iovolc run       run the four stages on an archive (Prefect local mode, no server needed)
  iovolc simulate  write a simulated JIRAM downlink (PDS3 archive, SPICE kernels, truth)

Settings resolve argument > environment (IOVOLC_ARCHIVE_URL, IOVOLC_KERNELS_URL,
IOVOLC_STORE_URL, IOVOLC_S3_ENDPOINT_URL, ...) > iovolc.toml > default.
Errors are one line on stderr (exit 2: bad usage, 1: failure); --debug shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """A request that cannot be run as given (exit code 2)."""


def _perijove_list(text: str) -> list[int]:
    """'57' -> [57]; '55-58' -> [55, 56, 57, 58]; '57,58' -> [57, 58]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out.extend(range(a, b + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"perijoves must look like 57, 57,58 or 55-58, "
                                         f"not {text!r}") from None
    # volumes are JNOJIR_xnnn: orbits 0..999 can be named (whether the archive holds
    # them is checked against the archive, which then says what it does hold)
    if not out or any(not 0 <= p <= 999 for p in out) or len(out) > 1000:
        raise argparse.ArgumentTypeError(f"perijoves must be in 0..999, not {text!r}")
    return out


def _cmd_simulate(args: argparse.Namespace) -> int:
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import MISSION_FRAMES_PER_PASS, MISSION_PERIJOVES, scenario_for

    perijoves = list(MISSION_PERIJOVES) if args.mission else args.perijove
    fpp = args.frames_per_pass
    if args.mission and fpp is None:
        fpp = MISSION_FRAMES_PER_PASS
    scenario = scenario_for(perijoves, seed=args.seed, night=args.night, frames_per_pass=fpp,
                            **_scenario_options(args))
    products = tuple(p.strip().upper() for p in args.products.split(","))

    def progress(pj: int, n: int) -> None:
        print(f"  PJ{pj}: {n} frames", file=sys.stderr, flush=True)

    print(f"simulating {scenario.name} (seed {args.seed}) into {args.out}", file=sys.stderr)
    s = simulate(scenario, out_dir=args.out, seed=args.seed, products=products,
                 progress=progress, workers=args.workers)
    print(f"archive : {s.archive}  ({s.n_volumes} PDS3 volumes, {s.n_products} products)")
    print(f"kernels : {s.kernels}")
    print(f"truth   : {s.truth}  ({s.n_sources_visible} sources visible, "
          f"{s.n_radiation_hits} radiation hits)")
    print(f"frames  : {s.n_frames} in {s.elapsed_s:.1f} s ({s.frames_per_s:.1f} frames/s)")
    return 0


def _scenario_options(args: argparse.Namespace) -> dict:
    opts = {}
    if getattr(args, "pointing_offset_deg", None) is not None:
        opts["pointing_offset_deg"] = args.pointing_offset_deg
    if getattr(args, "eruption_perijove", None) is not None:
        opts["eruption_perijove"] = args.eruption_perijove
    if getattr(args, "variability_dex", None) is not None:
        opts["variability_dex"] = args.variability_dex
    if getattr(args, "io_share", None) is not None:
        if not 0.0 < args.io_share <= 1.0:
            raise UsageError(f"--io-share must be in (0, 1], not {args.io_share}")
        opts["io_share"] = args.io_share
    return opts


def _bar(done: int, total: int, width: int = 24) -> str:
    n = int(round(width * done / max(total, 1)))
    return "[" + "#" * n + "-" * (width - n) + f"] {done}/{total}"


def _check_request(settings, perijoves: list[int]) -> None:
    """Refuse, before any work, what cannot run: missing or bad URLs, no data for the PJs."""
    from iovolc.pds3 import ProductError
    from iovolc.request import check_perijoves, check_source_url
    from iovolc.store import check_store_url

    for name in ("archive", "kernels"):
        if not getattr(settings, f"{name}_url"):
            raise UsageError(f"no {name} given: use --{name} or set IOVOLC_{name.upper()}_URL "
                             f"(or {name}_url in iovolc.toml)")
        try:
            check_source_url(name, getattr(settings, f"{name}_url"))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        check_store_url(settings.store_url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fs, _ = settings.fs(settings.archive_url)
    try:
        check_perijoves(settings.archive_url, perijoves, fs=fs)
    except ProductError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:  # NoDataError
        raise UsageError(str(exc)) from None


def _run_pipeline(*, archive: str | None, kernels: str | None, store: str | None,
                  perijoves: list[int], force: bool = False, s3_endpoint: str | None = None,
                  quiet: bool = False) -> dict:
    """The four stage flows per perijove (Prefect local mode), with progress."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.common import settings_for
    from flows.params import IngestParams, PerijoveParams, Sources
    from flows.perijove import qa_report
    from flows.runners import with_runner
    from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog

    sources = Sources(archive_url=archive, kernels_url=kernels, store_url=store,
                      s3_endpoint_url=s3_endpoint)
    try:
        settings = settings_for(sources)  # argument > environment > iovolc.toml > default
    except ValueError as exc:  # a URL that cannot work
        raise UsageError(str(exc)) from None
    _check_request(settings, perijoves)
    sources = Sources(archive_url=settings.archive_url, kernels_url=settings.kernels_url,
                      store_url=settings.store_url, s3_endpoint_url=settings.s3_endpoint_url)
    steps = len(perijoves) * 3 + 1
    cal_flow = with_runner(calibrate, settings)
    ext_flow = with_runner(extract_hotspots, settings)
    done = 0
    out: dict = {}

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if not quiet:
            print(f"{_bar(done, steps)} {what}", file=sys.stderr, flush=True)

    ing_all: dict = {"quarantined": [], "ingested": 0}
    for pj in perijoves:
        params = PerijoveParams(perijoves=[pj], sources=sources, force=force)
        ing = ingest_downlink(IngestParams(perijoves=[pj], sources=sources, force=force))
        ing_all["quarantined"] += ing["quarantined"]
        ing_all["ingested"] += ing["ingested"]
        tick(f"PJ{pj} ingested {ing['ingested']} products, quarantined {len(ing['quarantined'])}")
        cal = cal_flow(params)
        tick(f"PJ{pj} calibrated {cal[pj].get('frames', 0)} frames "
             f"(pointing: {cal[pj].get('pointing', {})})")
        ext = ext_flow(params)
        tick(f"PJ{pj} extracted ({ext[pj].get('detection_tables', 0)} detection tables, "
             f"{ext[pj].get('constellation_frames', 0)} frames by constellation)")
        out[pj] = {"ingest": ing, "calibrate": cal[pj], "extract": ext[pj]}
    pub = publish_catalog(PerijoveParams(perijoves=perijoves, sources=sources))
    tick(f"catalog {pub.get('version')} (changed: {pub.get('changed')}, "
         f"hotspots: {pub.get('n_hotspots')})")
    out["publish"] = pub
    out["settings"] = settings
    out["qa"] = qa_report(PerijoveParams(perijoves=perijoves, sources=sources), ing_all, {}, {},
                          pub)
    return out


def _where(settings, pub: dict) -> list[str]:
    """Lines saying where the catalog (and its files) are."""
    from iovolc.store import Store, object_key

    store = Store.from_settings(settings)
    if not pub.get("version"):
        return ["catalog : none published (nothing detected)"]
    latest = store.get_json(object_key("catalog_latest"))
    lines = [f"catalog : {store.url_for(object_key('catalog_latest'))} ({latest['version']})"]
    for name in ("map.png", "catalog.html", "hotspots.csv", "catalog.parquet"):
        if name in latest["files"]:
            lines.append(f"  {name:16s}{store.url_for(latest['files'][name])}")
    return lines


def _cmd_run(args: argparse.Namespace) -> int:
    out = _run_pipeline(archive=args.archive, kernels=args.kernels, store=args.store,
                        perijoves=args.perijove, force=args.force, s3_endpoint=args.s3_endpoint)
    print(out["qa"])
    ing = sum(v["ingest"]["ingested"] for k, v in out.items() if isinstance(k, int))
    if ing == 0 and not out["publish"].get("changed"):
        print("nothing to do: everything in the archive for these perijoves was already "
              "processed (use --force to redo)")
    for line in _where(out["settings"], out["publish"]):
        print(line)
    return 0


def _compile_in_background() -> list[subprocess.Popen]:
    """Compile the numba loops into their cache in two processes of their own (a fresh
    clone has none: ~15 s of compiling on one core), beside the simulator. Quiet: a
    failure only means that the workers compile what they use themselves (``-P``: the
    installed iovolc, whatever the working directory)."""
    return [subprocess.Popen([sys.executable, "-P", "-c",
                              f"from iovolc import compiled, raytrace; {calls}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for calls in ("raytrace.warm_up(); compiled.warm_up_image()",
                          "compiled.warm_up_fit()")]


def _finish_compiling(procs: list[subprocess.Popen], *, timeout_s: float) -> None:
    """Wait for :func:`_compile_in_background` up to ``timeout_s`` in all; stop what is
    left (the workers then compile it themselves)."""
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cmd_demo(args: argparse.Namespace) -> int:
    from flows.local_api import TemporaryApiStart  # Prefect is imported in its thread
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = args.out.resolve()
    t0 = time.perf_counter()
    warm = _compile_in_background()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # as _run_pipeline
    prefect_start = TemporaryApiStart()
    prefect_start.start()
    sim_dir = out / "downlink"
    try:
        if not (sim_dir / "truth" / "frames.csv").exists():
            scenario = scenario_for(args.perijove, seed=args.seed,
                                    frames_per_pass=args.frames_per_pass,
                                    **_scenario_options(args))
            s = simulate(scenario, out_dir=sim_dir, seed=args.seed)
            print(f"simulated {s.n_frames} frames ({s.frames_per_s:.1f} frames/s) into "
                  f"{sim_dir}", file=sys.stderr)
    finally:  # the workers then load the compiled loops instead of each compiling them
        _finish_compiling(warm, timeout_s=120.0)
        # a flow run must not see the server "running" before it answers: no timeout
        # here (Prefect's own startup timeout ends a start that does not answer)
        prefect_start.join()
    t1 = time.perf_counter()
    store = (out / "store").as_uri()
    res = _run_pipeline(archive=(sim_dir / "archive").as_uri(),
                        kernels=(sim_dir / "kernels").as_uri(), store=store,
                        perijoves=args.perijove)
    t2 = time.perf_counter()
    print(res["qa"])
    score = compare_with_truth(sim_dir, store)
    print("comparison with the simulator's truth (counted over every frame with Io in view):")
    for k, v in score.items():
        print(f"  {k:38s} {v:.3f}" if isinstance(v, float) else f"  {k:38s} {v}")
    started = ("" if prefect_start.seconds is None else
               f" (Prefect's temporary API started beside it in {prefect_start.seconds:.1f} s)")
    print(f"wall time: simulate {t1 - t0:.1f} s{started}, pipeline {t2 - t1:.1f} s")
    if prefect_start.error:
        print(f"Prefect's temporary API did not start beside the simulator "
              f"({prefect_start.error}); the first flow run started it", file=sys.stderr)
    for line in _where(res["settings"], res["publish"]):
        print(line)
    return 0


def compare_with_truth(sim_dir: Path, store_url: str) -> dict:
    """Score the published catalog against the simulator's truth."""
    import pandas as pd

    from iovolc.reader import read_jiram_product
    from iovolc.settings import load_settings
    from iovolc.sim import evaluate as ev
    from iovolc.store import Store, object_key

    store = Store.from_settings(load_settings(store_url=store_url))
    latest = store.get_json(object_key("catalog_latest"))
    catalog = store.get_parquet(latest["files"]["catalog.parquet"])
    detections = store.get_parquet(latest["files"]["detections.parquet"])
    frames = pd.concat([store.get_parquet(k) for k in store.list("results/")
                        if k.endswith("/frames.parquet")], ignore_index=True)
    truth = ev.load_truth(sim_dir)
    labels = {p.stem: p for p in sim_dir.glob("archive/JNOJIR_*/DATA/*.LBL")}
    noise = ev.measure_noise(truth, lambda pid: read_jiram_product(labels[pid]).image)
    detectable = ev.detectable_sources(truth, noise)
    return ev.score(catalog, detectable, truth, detections=detections, frames=frames)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iovolc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="write a simulated JIRAM downlink (archive, kernels, "
                                          "truth)")
    sim.add_argument("--perijove", type=_perijove_list, default=[57],
                     help="perijove(s): 57, 57,58 or 55-58 (57/58 are the close flybys)")
    sim.add_argument("--mission", action="store_true",
                     help="full-mission mode: every perijove 5-75 with an Io pass")
    sim.add_argument("--night", action="store_true", help="distant night-side passes")
    sim.add_argument("--out", type=Path, required=True, help="output folder")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--frames-per-pass", type=int, default=None,
                     help="approximate frames per pass (default: the scenario's plan)")
    sim.add_argument("--products", default="EDR,RDR", help="EDR,RDR (default) or one of them")
    sim.add_argument("--workers", type=int, default=1,
                     help="processes for multi-pass scenarios (SPICE runs in processes)")
    sim.add_argument("--io-share", type=float, default=None,
                     help="share of each pass's frames that look at Io; the rest look at "
                          "Jupiter, as most of the real archive does (default 1)")
    _add_scenario_flags(sim)
    sim.set_defaults(func=_cmd_simulate)

    run = sub.add_parser("run", help="run the pipeline flows locally (no server needed)")
    run.add_argument("--archive", default=None,
                     help="archive root URL (PDS3 volumes); default IOVOLC_ARCHIVE_URL")
    run.add_argument("--kernels", default=None,
                     help="kernel root URL (NAIF layout); default IOVOLC_KERNELS_URL")
    run.add_argument("--store", default=None,
                     help="object store root URL; default IOVOLC_STORE_URL or ./iovolc-store")
    run.add_argument("--perijove", type=_perijove_list, required=True,
                     help="perijove(s): 57, 57,58 or 55-58")
    run.add_argument("--s3-endpoint", default=None, help="S3-compatible endpoint URL")
    run.add_argument("--force", action="store_true", help="re-process existing outputs")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="simulate a downlink, run the pipeline, compare with "
                                       "truth")
    demo.add_argument("--out", type=Path, default=Path("demo"))
    demo.add_argument("--perijove", type=_perijove_list, default=[57])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--frames-per-pass", type=int, default=None)
    _add_scenario_flags(demo)
    demo.set_defaults(func=_cmd_demo)
    return p


def _add_scenario_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pointing-offset-deg", type=float, default=None,
                   help="force the pass-wide along-spin pointing error (deg, signed)")
    p.add_argument("--eruption-perijove", type=int, default=None,
                   help="a giant new eruption appears at this perijove")
    p.add_argument("--variability-dex", type=float, default=None,
                   help="per-perijove power variability of the sources (dex)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"iovolc {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iovolc {args.command}: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI's one-line error boundary
        if args.debug:
            raise
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"iovolc {args.command}: {type(exc).__name__}: {text} (--debug for the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
