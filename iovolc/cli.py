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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
