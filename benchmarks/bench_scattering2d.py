"""Benchmark: wavephase.Scattering2D against Kymatio 0.3.0, side by side in one run.

Cases (those of the foundation issue):
  (a) J=2, L=8, 256 images of 28x28   forward, and forward+backward
  (b) J=3, L=8,  64 images of 32x32   forward
  (c) J=4, L=8,   8 images of 256x256 forward, filter-bank build time
Every measurement runs in a fresh subprocess (so peak memory is that case's own),
with the same number of threads for both libraries. Wall time and process CPU time
are both recorded: on a shared machine the CPU time of a 1-thread run is the steadier
figure (with 2 threads it also counts OpenMP spin-waiting). Kymatio needs SciPy < 1.15, so it
runs from its own interpreter (``make kymatio-venv`` creates ``.venv-kymatio``).

Usage: python benchmarks/bench_scattering2d.py [--threads 2] [--repeats 5] [--backend auto]
                                               [--kymatio-python PATH] [--json out.json] [--cases abc]
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


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(impl: str, case: str, measure: str, threads: int, repeats: int, backend: str = "auto") -> dict:
    import torch

    torch.set_num_threads(threads)
    cfg = CASES[case]
    shape = (cfg["size"], cfg["size"])
    if impl == "wavephase":
        from wavephase import Scattering2D
        from wavephase.filters.bank import _cached_bank

        def build():
            _cached_bank.cache_clear()
            return Scattering2D(cfg["J"], shape, L=cfg["L"], backend=backend)
    else:
        from kymatio.torch import Scattering2D as KymatioScattering2D

        def build():
            return KymatioScattering2D(J=cfg["J"], shape=shape, L=cfg["L"])

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


def run_worker(python: str, impl: str, case: str, measure: str, threads: int, repeats: int,
               backend: str = "auto") -> dict | None:
    cmd = [python, __file__, "--worker", impl, case, measure, "--threads", str(threads), "--repeats", str(repeats),
           "--backend", backend]
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {impl} {case} {measure} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", default="auto", choices=["auto", "fft", "matmul"],
                        help="wavephase Scattering2D backend")
    default_kymatio = Path(__file__).resolve().parents[1] / ".venv-kymatio" / "bin" / "python"
    parser.add_argument("--kymatio-python", default=str(default_kymatio) if default_kymatio.exists() else None)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--cases", default="".join(CASES), help="which cases to run, e.g. 'ac' (default: all)")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "CASE", "MEASURE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads, args.repeats, args.backend)))
        return

    rows = []
    for case, measure in PLAN:
        if case not in args.cases:
            continue
        ours = run_worker(sys.executable, "wavephase", case, measure, args.threads, args.repeats, args.backend)
        theirs = (run_worker(args.kymatio_python, "kymatio", case, measure, args.threads, args.repeats)
                  if args.kymatio_python else None)
        rows.append({"case": case, **CASES[case], "measure": measure, "wavephase": ours, "kymatio": theirs})

    print(f"threads={args.threads}, repeats={args.repeats} (median), backend={args.backend}, kymatio: "
          f"{'0.3.0 via ' + args.kymatio_python if args.kymatio_python else 'not available'}\n")
    print("| case | measure | wavephase | kymatio 0.3.0 | speed-up (wall) | speed-up (CPU time) "
          "| peak extra MB (wavephase / kymatio) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        w, k = r["wavephase"], r["kymatio"]
        label = f"({r['case']}) J={r['J']} {r['batch']}x{r['size']}²"
        unit = "s" if r["measure"] != "forward" else "img/s"

        def show(m):
            if m is None:
                return "n/a"
            return f"{m['images_per_second']:.1f} img/s" if unit == "img/s" else f"{m['seconds']:.3f} s"

        ratio = cpu_ratio = "n/a"
        if w and k:
            ratio = f"{k['seconds'] / w['seconds']:.2f}x"
            if "cpu_seconds" in w:
                cpu_ratio = f"{k['cpu_seconds'] / w['cpu_seconds']:.2f}x"
        mem = "n/a" if not w or "peak_extra_mb" not in w else (
            f"{w['peak_extra_mb']:.0f} / {k['peak_extra_mb']:.0f}" if k else f"{w['peak_extra_mb']:.0f} / n/a")
        print(f"| {label} | {r['measure']} | {show(w)} | {show(k)} | {ratio} | {cpu_ratio} | {mem} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
