"""Spread over seeds of a documented command: run it with several ``--seed`` values, record the spread.

A single run shows one draw of the data, the initialisation and the sampling. This
script runs ``wavephase ARGS --seed S --out WORK/seed-S`` for every seed asked for,
then writes the record of the results page (``benchmarks/record_experiment.py``) with
each headline as its median over the seeds and its smallest and largest value as its
spread, and a table of every seed's figures:

    python benchmarks/seed_spread.py --name turbulence_recipe --work runs/seeds/turbulence-256 \\
        --seeds 0 1 2 --parallel 2 --threads 1 -- synth --recipe turbulence-256
    python benchmarks/make_results_page.py

A seed whose folder already holds the ``metrics.json`` of the same command is not run
again, so a killed study resumes where it stopped (each command resumes its own long
steps). All runs must come from one commit: the record refuses a mix.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_experiment import command_without_seed, record_from_metrics  # noqa: E402


def _wavephase() -> list[str]:
    """The ``wavephase`` command of this interpreter's environment (so the runs record ``wavephase ...``)."""
    script = Path(sys.executable).parent / "wavephase"
    return [str(script)] if script.exists() else [sys.executable, "-m", "wavephase.cli.main"]


def is_complete(folder: Path, args: list[str]) -> bool:
    """Whether ``folder`` holds the ``metrics.json`` of ``wavephase ARGS`` (any seed, any output folder)."""
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        return False
    command = json.loads(metrics.read_text()).get("run", {}).get("command", "")
    return command_without_seed(command) == command_without_seed(" ".join(["wavephase", *args]))


def run_seed(args: list[str], seed: int, work: Path, threads: int | None) -> tuple[int, float]:
    """Run one seed into ``work/seed-<seed>`` (its output in ``log.txt`` there); return its exit code and seconds."""
    folder = work / f"seed-{seed}"
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(folder / "log.txt", "a") as log:
        code = subprocess.call([*_wavephase(), *args, "--seed", str(seed), "--out", str(folder)], stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    return code, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Command line: ``seed_spread.py --name NAME --work DIR --seeds 0 1 2 -- ARGS``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="record file stem, e.g. turbulence_recipe")
    parser.add_argument("--work", type=Path, required=True, help="folder of the runs (one seed-S folder each)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run (default: 0 1 2)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS of each run (default: inherited)")
    parser.add_argument("--record", help="write here instead of benchmarks/results/NAME.json")
    parser.add_argument("--title", help="heading on the results page")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the wavephase subcommand and its flags")
    args = parser.parse_args(argv)
    command = args.args[1:] if args.args[:1] == ["--"] else args.args
    if not command:
        parser.error("give the wavephase command after --, e.g. -- synth --recipe turbulence-256")
    if any(a in ("--seed", "--out") or a.startswith(("--seed=", "--out=")) for a in command):
        parser.error("the command must not set --seed or --out: this script sets both per seed")
    if len(set(args.seeds)) < 2:
        parser.error("a spread needs at least two different seeds")
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")
    todo = [s for s in args.seeds if not is_complete(args.work / f"seed-{s}", command)]
    print(f"{len(args.seeds) - len(todo)} of {len(args.seeds)} seeds already done; running {todo}", flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        for seed, (code, seconds) in zip(todo, pool.map(lambda s: run_seed(command, s, args.work, args.threads),
                                                        todo)):
            print(f"seed {seed}: exit {code} after {seconds:.0f} s", flush=True)
            if code != 0:
                raise SystemExit(f"seed {seed} failed; see {args.work / f'seed-{seed}' / 'log.txt'}")
    first, *others = [args.work / f"seed-{s}" for s in args.seeds]
    record_from_metrics(first, args.name, args.record, args.title, others)


if __name__ == "__main__":
    main()
