"""Benchmark: wavephase.Scattering2D against Kymatio 0.3.0 (and wavephase before a change), in one run.

Cases (those of the foundation issue):
  (a) J=2, L=8, 256 images of 28x28   forward, and forward+backward
  (b) J=3, L=8,  64 images of 32x32   forward
  (c) J=4, L=8,   8 images of 256x256 forward, filter-bank build time
Every measurement runs in a fresh subprocess (so peak memory is that case's own),
with the same number of threads for every implementation. The implementations
run in alternation, ``--rounds`` times: each round is one process per
implementation, which times ``--repeats`` calls after a warm-up and reports their
median. Figures are the median over the rounds with their min-max spread (the
machine's noise); speed-ups are taken round by round (the implementations of a
round ran back to back, under the same load) and summarised the same way. Wall
time and process CPU time are both recorded: on a shared machine the CPU time
is the steadier figure (with 2 threads it also counts OpenMP spin-waiting).
Kymatio needs SciPy < 1.15, so it runs from its own interpreter (``make
kymatio-venv`` creates ``.venv-kymatio``).

``--baseline-src PATH`` also runs "wavephase before": the package under ``PATH``
(a ``src`` folder of another checkout, put first on ``PYTHONPATH``), and prints
the speed-up of this checkout over it.

Usage: python benchmarks/bench_scattering2d.py [--threads 2] [--repeats 5] [--rounds 5] [--backend auto]
                                               [--kymatio-python PATH] [--baseline-src PATH]
                                               [--json out.json] [--cases abc]
``--backend`` picks wavephase's DFT path (``auto``: matrix products for (a) and (b), FFTs for (c)).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "a": dict(J=2, L=8, batch=256, size=28),
    "b": dict(J=3, L=8, batch=64, size=32),
    "c": dict(J=4, L=8, batch=8, size=256),
}
# (case, measurement)
PLAN = [("a", "forward"), ("a", "forward_backward"), ("b", "forward"), ("c", "forward"), ("c", "build")]
SRC = Path(__file__).resolve().parents[1] / "src"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(impl: str, case: str, measure: str, threads: int, repeats: int, backend: str = "auto") -> dict:
    """One implementation on one case, in this process: median of ``repeats`` timed calls."""
    import torch

    torch.set_num_threads(threads)
    cfg = CASES[case]
    shape = (cfg["size"], cfg["size"])
    if impl == "kymatio":
        from kymatio.torch import Scattering2D as KymatioScattering2D

        def build():
            return KymatioScattering2D(J=cfg["J"], shape=shape, L=cfg["L"])
    else:
        from wavephase import Scattering2D
        from wavephase.filters.bank import _cached_bank

        def build():
            _cached_bank.cache_clear()
            return Scattering2D(cfg["J"], shape, L=cfg["L"], backend=backend)

    x = torch.randn(cfg["batch"], *shape, generator=torch.Generator().manual_seed(0))
    base_rss = _rss_mb()
    start = time.perf_counter()
    S = build()
    build_seconds = time.perf_counter() - start
    if measure == "build":
        times = [build_seconds]
        for _ in range(repeats - 1):
            start = time.perf_counter()
            build()
            times.append(time.perf_counter() - start)
        return {"seconds": statistics.median(times)}

    def step():
        if measure == "forward":
            with torch.no_grad():
                S(x)
        else:
            xg = x.clone().requires_grad_(True)
            S(xg).sum().backward()

    step()  # warm-up
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    seconds = statistics.median(times)
    return {"seconds": seconds, "images_per_second": cfg["batch"] / seconds,
            "cpu_seconds": statistics.median(cpu_times), "peak_extra_mb": _rss_mb() - base_rss}


def run_worker(python: str, impl: str, case: str, measure: str, args: argparse.Namespace,
               src: Path | None = None) -> dict | None:
    """One round of one implementation, in a fresh process (``src`` first on its ``PYTHONPATH``)."""
    cmd = [python, __file__, "--worker", impl, case, measure, "--threads", str(args.threads),
           "--repeats", str(args.repeats), "--backend", args.backend]
    env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {impl} {case} {measure} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict | None:
    """Median and min-max of the rounds' figures (None when no round gave one)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def ratios(rounds: list[dict], num: str, den: str, key: str) -> dict | None:
    """Round-by-round ``num[key] / den[key]`` (a speed-up of ``den`` over ``num`` for times)."""
    return summary([r[num][key] / r[den][key] for r in rounds
                    if r.get(num) and r.get(den) and key in r[num] and key in r[den]])


def measure_case(case: str, measure: str, impls: dict[str, tuple[str, Path | None]],
                 args: argparse.Namespace) -> dict:
    """All rounds of one measurement, the implementations alternating within each round."""
    rounds = [{impl: run_worker(python, impl, case, measure, args, src) for impl, (python, src) in impls.items()}
              for _ in range(args.rounds)]
    row: dict = {"case": case, **CASES[case], "measure": measure, "rounds": rounds}
    for impl in impls:
        done = [r[impl] for r in rounds if r[impl]]
        row[impl] = {key: summary([d[key] for d in done if key in d])
                     for key in ("seconds", "cpu_seconds", "images_per_second", "peak_extra_mb")
                     if any(key in d for d in done)}
    speedups = {"kymatio": "vs_kymatio", "before": "vs_before"}
    for other, name in speedups.items():
        if other in impls:
            row[name] = {"wall": ratios(rounds, other, "wavephase", "seconds"),
                         "cpu": ratios(rounds, other, "wavephase", "cpu_seconds")}
    return row


def _show(s: dict | None, fmt: str, suffix: str = "") -> str:
    if not s:
        return "n/a"
    return f"{s['median']:{fmt}}{suffix} [{s['min']:{fmt}}-{s['max']:{fmt}}]"


def print_table(rows: list[dict], impls: list[str]) -> None:
    names = {"wavephase": "wavephase", "before": "wavephase before", "kymatio": "kymatio 0.3.0"}
    head = [names[i] for i in impls]
    cols = ["vs kymatio (wall)", "vs kymatio (CPU)"] if "kymatio" in impls else []
    cols += ["after / before (wall)", "after / before (CPU)"] if "before" in impls else []
    print("| case | measure | " + " | ".join(head + cols) + " | peak extra MB (" + " / ".join(head) + ") |")
    print("|---" * (3 + len(head) + len(cols)) + "|")
    for r in rows:
        label = f"({r['case']}) J={r['J']} {r['batch']}x{r['size']}²"
        cells = []
        for impl in impls:
            m = r[impl]
            cells.append(_show(m.get("images_per_second"), ".0f", " img/s") if r["measure"] == "forward"
                         else _show(m.get("seconds"), ".3f", " s"))
        for name in ("vs_kymatio", "vs_before"):
            if name in r:
                cells += [_show(r[name]["wall"], ".2f", "x"), _show(r[name]["cpu"], ".2f", "x")]
        mem = " / ".join(f"{r[i]['peak_extra_mb']['median']:.0f}" if r[i].get("peak_extra_mb") else "n/a"
                         for i in impls)
        print(f"| {label} | {r['measure']} | " + " | ".join(cells) + f" | {mem} |")


def write_scattering_record(rows: list[dict], impls: list[str], args: argparse.Namespace) -> None:
    """The record of this run for the results page: speed-ups per case, every median in a table."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record import describe_checkout, headline, write_record

    def label(r: dict) -> str:
        return f"({r['case']}) J={r['J']}, {r['batch']} x {r['size']}², {r['measure'].replace('_', '+')}"

    headlines = []
    for name, other in (("vs_kymatio", "Kymatio 0.3.0"), ("vs_before", "wavephase before")):
        for r in rows:
            wall = r.get(name, {}).get("wall")
            if wall and r["measure"] != "build":
                headlines.append(headline(f"{label(r)}: speed-up over {other}", wall["median"], "x",
                                          spread=(wall["min"], wall["max"])))
    columns = ["case", *[f"{i} (s)" for i in impls], "peak extra MB (wavephase)"]
    table = [[label(r), *[r[i]["seconds"]["median"] if r[i].get("seconds") else None for i in impls],
              r["wavephase"]["peak_extra_mb"]["median"] if r["wavephase"].get("peak_extra_mb") else None]
             for r in rows]
    write_record("scattering2d", application="scattering", title="2D scattering: wavephase against Kymatio",
                 headlines=headlines, path=args.record,
                 tables=[{"title": "median wall time per call over the rounds", "columns": columns, "rows": table}],
                 notes=[f"{args.threads} threads, {args.rounds} rounds x {args.repeats} repeats, backend "
                        f"{args.backend}; a speed-up is taken within each round (implementations back to back) and "
                        "the median over rounds is shown with its min-max spread.",
                        "Outputs equal Kymatio's to float32 round-off (tests/scattering/test_kymatio_reference.py).",
                        *([f"wavephase before: {describe_checkout(args.baseline_src)}."] if args.baseline_src else [])])



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per process (median)")
    parser.add_argument("--rounds", type=int, default=5, help="processes per implementation, in alternation")
    parser.add_argument("--backend", default="auto", choices=["auto", "fft", "matmul"],
                        help="wavephase Scattering2D backend")
    default_kymatio = Path(__file__).resolve().parents[1] / ".venv-kymatio" / "bin" / "python"
    parser.add_argument("--kymatio-python", default=str(default_kymatio) if default_kymatio.exists() else None)
    parser.add_argument("--baseline-src", type=Path, help="also run the wavephase package under this src folder")
    parser.add_argument("--json", help="also write every round and summary to this file")
    parser.add_argument("--record", help="record for the results page (default benchmarks/results/scattering2d.json)")
    parser.add_argument("--cases", default="".join(CASES), help="which cases to run, e.g. 'ac' (default: all)")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "CASE", "MEASURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads, args.repeats, args.backend)))
        return
    if args.baseline_src is not None and not (args.baseline_src / "wavephase" / "__init__.py").is_file():
        parser.error(f"--baseline-src {args.baseline_src} holds no wavephase package; give the src folder "
                     "of a checkout, e.g. /path/to/checkout/src")

    impls: dict[str, tuple[str, Path | None]] = {"wavephase": (sys.executable, SRC)}
    if args.baseline_src is not None:
        impls["before"] = (sys.executable, args.baseline_src.resolve())
    if args.kymatio_python:
        impls["kymatio"] = (args.kymatio_python, None)
    rows = [measure_case(case, measure, impls, args) for case, measure in PLAN if case in args.cases]
    print(f"threads={args.threads}, {args.rounds} rounds x {args.repeats} repeats, backend={args.backend}; "
          f"medians over rounds [min-max]; kymatio: "
          f"{'0.3.0 via ' + args.kymatio_python if args.kymatio_python else 'not available'}"
          + (f"; before: {args.baseline_src}" if args.baseline_src else "") + "\n")
    print_table(rows, list(impls))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "repeats": args.repeats,
                                               "rounds": args.rounds, "backend": args.backend,
                                               "baseline_src": str(args.baseline_src) if args.baseline_src else None,
                                               "rows": rows}, indent=2))
    write_scattering_record(rows, list(impls), args)


if __name__ == "__main__":
    main()
