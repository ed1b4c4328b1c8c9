"""Command line: ``iovolc <subcommand>``.

``iovolc simulate`` writes a simulated Juno JIRAM downlink (PDS3 archive,
SPICE kernel tree, truth). Later stages add ``run`` and ``demo``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _perijove_list(text: str) -> list[int]:
    """'57' -> [57]; '55-58' -> [55, 56, 57, 58]; '57,58' -> [57, 58]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (int(x) for x in part.split("-", 1))
            out.extend(range(a, b + 1))
        elif part:
            out.append(int(part))
    if not out:
        raise argparse.ArgumentTypeError(f"no perijove in {text!r}")
    return out


def _cmd_simulate(args: argparse.Namespace) -> int:
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import MISSION_FRAMES_PER_PASS, MISSION_PERIJOVES, scenario_for

    perijoves = list(MISSION_PERIJOVES) if args.mission else args.perijove
    fpp = args.frames_per_pass
    if args.mission and fpp is None:
        fpp = MISSION_FRAMES_PER_PASS
    scenario = scenario_for(perijoves, seed=args.seed, night=args.night, frames_per_pass=fpp)
    products = tuple(p.strip().upper() for p in args.products.split(","))

    def progress(pj: int, n: int) -> None:
        print(f"  PJ{pj}: {n} frames", file=sys.stderr, flush=True)

    print(f"simulating {scenario.name} (seed {args.seed}) into {args.out}", file=sys.stderr)
    s = simulate(scenario, out_dir=args.out, seed=args.seed, products=products,
                 progress=progress, workers=args.workers)
    print(f"archive : {s.archive}  ({s.n_volumes} PDS3 volumes, {s.n_products} products)")
    print(f"kernels : {s.kernels}")
    print(f"truth   : {s.truth}  ({s.n_sources_visible} catalog sources visible, "
          f"{s.n_radiation_hits} radiation hits)")
    print(f"frames  : {s.n_frames} in {s.elapsed_s:.1f} s ({s.frames_per_s:.1f} frames/s)")
    return 0


def _bar(done: int, total: int, width: int = 24) -> str:
    n = int(round(width * done / max(total, 1)))
    return "[" + "#" * n + "-" * (width - n) + f"] {done}/{total}"


def _run_pipeline(*, archive: str, kernels: str, store: str, perijoves: list[int],
                  force: bool = False, s3_endpoint: str | None = None) -> dict:
    """The four stage flows per perijove (Prefect local mode), with progress."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.common import settings_for
    from flows.params import IngestParams, PerijoveParams, Sources
    from flows.perijove import qa_report
    from flows.runners import with_runner
    from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog

    sources = Sources(archive_url=archive, kernels_url=kernels, store_url=store,
                      s3_endpoint_url=s3_endpoint)
    steps = len(perijoves) * 3 + 1
    settings = settings_for(sources)  # IOVOLC_DASK_ADDRESS picks a Dask runner
    calibrate = with_runner(calibrate, settings)
    extract_hotspots = with_runner(extract_hotspots, settings)
    done = 0
    out = {}

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        print(f"{_bar(done, steps)} {what}", file=sys.stderr, flush=True)

    ing_all = {"quarantined": []}
    for pj in perijoves:
        params = PerijoveParams(perijoves=[pj], sources=sources, force=force)
        ing = ingest_downlink(IngestParams(perijoves=[pj], sources=sources, force=force))
        ing_all["quarantined"] += ing["quarantined"]
        tick(f"PJ{pj} ingested {ing['ingested']} products, quarantined {len(ing['quarantined'])}")
        cal = calibrate(params)
        tick(f"PJ{pj} calibrated {cal[pj].get('frames', 0)} frames")
        ext = extract_hotspots(params)
        tick(f"PJ{pj} extracted ({ext[pj].get('detection_tables', 0)} detection tables)")
        out[pj] = {"ingest": ing, "calibrate": cal[pj], "extract": ext[pj]}
    pub = publish_catalog(PerijoveParams(perijoves=perijoves, sources=sources))
    tick(f"catalog {pub.get('version')} (changed: {pub.get('changed')}, "
         f"hotspots: {pub.get('n_hotspots')})")
    out["publish"] = pub
    out["qa"] = qa_report(PerijoveParams(perijoves=perijoves, sources=sources), ing_all, {}, {},
                          pub)
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    out = _run_pipeline(archive=args.archive, kernels=args.kernels, store=args.store,
                        perijoves=args.perijove, force=args.force, s3_endpoint=args.s3_endpoint)
    print(out["qa"])
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = args.out.resolve()
    t0 = time.perf_counter()
    sim_dir = out / "downlink"
    if not (sim_dir / "truth" / "frames.csv").exists():
        scenario = scenario_for(args.perijove, seed=args.seed,
                                frames_per_pass=args.frames_per_pass)
        s = simulate(scenario, out_dir=sim_dir, seed=args.seed)
        print(f"simulated {s.n_frames} frames ({s.frames_per_s:.1f} frames/s) into {sim_dir}",
              file=sys.stderr)
    t1 = time.perf_counter()
    store = (out / "store").as_uri()
    res = _run_pipeline(archive=(sim_dir / "archive").as_uri(),
                        kernels=(sim_dir / "kernels").as_uri(), store=store,
                        perijoves=args.perijove)
    t2 = time.perf_counter()
    print(res["qa"])
    score = compare_with_truth(sim_dir, store)
    print("comparison with the simulator's truth:")
    for k, v in score.items():
        print(f"  {k:24s} {v:.3f}" if isinstance(v, float) else f"  {k:24s} {v}")
    print(f"wall time: simulate {t1 - t0:.1f} s, pipeline {t2 - t1:.1f} s")
    return 0


def compare_with_truth(sim_dir: Path, store_url: str) -> dict:
    """Score the published catalog against the simulator's truth."""
    import pandas as pd

    from iovolc.pds3 import read_jiram_product
    from iovolc.settings import load_settings
    from iovolc.sim import evaluate as ev
    from iovolc.store import Store, object_key

    store = Store.from_settings(load_settings(store_url=store_url))
    latest = store.get_json(object_key("catalog_latest"))
    catalog = store.get_parquet(latest["files"]["catalog.parquet"])
    detections = store.get_parquet(latest["files"]["detections.parquet"])
    frames = pd.concat([store.get_parquet(k) for k in store.list("frames/")], ignore_index=True)
    truth = ev.load_truth(sim_dir)
    labels = {p.stem: p for p in sim_dir.glob("archive/JNOJIR_2*/DATA/*.LBL")}
    noise = ev.measure_noise(truth, lambda pid: read_jiram_product(labels[pid]).image)
    detectable = ev.detectable_sources(truth, frames, noise)
    return ev.score(catalog, detectable, truth, detections=detections)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="iovolc", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated JIRAM downlink (archive, kernels, truth)")
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
    sim.set_defaults(func=_cmd_simulate)

    run = sub.add_parser("run", help="run the pipeline flows locally (no server needed)")
    run.add_argument("--archive", required=True, help="archive root URL (PDS3 volumes)")
    run.add_argument("--kernels", required=True, help="kernel root URL (NAIF layout)")
    run.add_argument("--store", required=True, help="object store root URL")
    run.add_argument("--perijove", type=_perijove_list, required=True,
                     help="perijove(s): 57, 57,58 or 55-58")
    run.add_argument("--s3-endpoint", default=None, help="S3-compatible endpoint URL")
    run.add_argument("--force", action="store_true", help="re-process existing outputs")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="simulate a downlink, run the pipeline, compare with truth")
    demo.add_argument("--out", type=Path, default=Path("demo"))
    demo.add_argument("--perijove", type=_perijove_list, default=[57])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--frames-per-pass", type=int, default=None)
    demo.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
