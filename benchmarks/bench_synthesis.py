"""Benchmark: phase harmonic statistics (forward + backward) and full syntheses, against pywph.

Every measurement runs in a fresh subprocess, so that its peak resident memory
(``ru_maxrss``) is its own; the increase of the peak over the state just
before the first forward pass (operator built, reference set) is reported as
the memory of forward + backward. pywph 1.1.3 runs in its own interpreter
(``--pywph-python``, e.g. ``.venv-pywph/bin/python``) with its default model
(S11, S00, S01, C01, Cphase, L) and its chunked gradient loop (one backward per
chunk of coefficients, as in pywph's synthesis examples). It also times full
syntheses: one of a test texture, and one from one simulated 256² turbulence
field at the settings of ``wavephase synth --recipe turbulence-256-one``, per
seed of ``--one-field-seeds``.

``--against pywph`` runs instead the side-by-side of syntheses from one field
(:mod:`synthesis_against`): ours, pywph's documented L-BFGS recipe at the same
iterations and at the same wall time, the Gaussian model and true fields, every
metric of issue 22 and the discrimination accuracy, against held-out true fields;
it writes ``benchmarks/results/synthesis_against_pywph.json``.

Usage::

    python benchmarks/bench_synthesis.py --pywph-python .venv-pywph/bin/python
    python benchmarks/bench_synthesis.py --size 128 --J 5 --synthesis-steps 50 --no-synthesis
    python benchmarks/bench_synthesis.py --against pywph --pywph-python .venv-pywph/bin/python \\
        --fields turbulence:128,ising:128 --n-syntheses 4 --synthesis-steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_COMMON = """
import json, resource, sys, time
import torch
torch.set_num_threads({threads})
torch.manual_seed(0)
M = N = {size}
J, L, dn, reps = {J}, {L}, {dn}, {reps}
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
g = torch.Generator().manual_seed(0)
ref = torch.randn(1, M, N, generator=g)
y0 = torch.randn(1, M, N, generator=g)
"""

_WAVEPHASE = _COMMON + """
from wavephase.harmonics import PhaseHarmonicStatistics
op = PhaseHarmonicStatistics((M, N), J, L, dn=dn)
op.set_reference(ref)
n_coeffs = sum(op.family_sizes().values())
base = rss_mb()
times = []
for _ in range(reps):
    y = y0.clone().requires_grad_(True)
    t = time.perf_counter()
    loss = op.loss(y)
    loss.backward()
    times.append(time.perf_counter() - t)
print(json.dumps({{"times": times, "peak_mb": rss_mb(), "base_mb": base, "n_coeffs": n_coeffs}}))
"""

_PYWPH = _COMMON + """
import pywph as pw
op = pw.WPHOp(M, N, J, L=L, dn=dn, device="cpu")
target = op.apply(ref[0], norm="auto", pbc=True)
n_coeffs = int(target.numel())
base = rss_mb()
times = []
for _ in range(reps):
    y = y0[0].clone().requires_grad_(True)
    t = time.perf_counter()
    yp, nb_chunks = op.preconfigure(y, requires_grad=True, pbc=True)
    for i in range(nb_chunks):
        coeffs, idx = op.apply(yp, i, norm="auto", ret_indices=True, pbc=True)
        loss = (coeffs - target[idx]).abs().square().sum()
        loss.backward(retain_graph=True)
        del coeffs, idx, loss
    times.append(time.perf_counter() - t)
print(json.dumps({{"times": times, "peak_mb": rss_mb(), "base_mb": base, "n_coeffs": n_coeffs}}))
"""

_SYNTHESIS = """
import json, resource, time
import torch
torch.set_num_threads({threads})
from wavephase.synthesis import synthesize
size, steps, n = {size}, {steps}, {n_samples}
g = torch.Generator().manual_seed(0)
w = torch.randn(2, size, size, generator=g)
k = torch.fft.fftfreq(size)
kk = (k[:, None] ** 2 + k[None] ** 2).sqrt()
smooth = torch.fft.ifft2(torch.fft.fft2(w) * torch.exp(-((kk / 0.08) ** 2))).real
target = torch.exp(0.8 * smooth / smooth.std())  # intermittent (flatness ~ 15) test texture
t = time.perf_counter()
result = synthesize(target, n_samples=n, steps=steps, random_state=0, progress=False)
wall = time.perf_counter() - t
hist = result.loss_history
print(json.dumps({{"wall_s": wall, "steps_done": result.steps_done, "evaluations": result.evaluations,
                  "loss_first": hist[0], "loss_last": hist[-1],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}}))
"""

# One synthesis from one simulated turbulence field with the settings of `wavephase synth --recipe
# turbulence-256-one` (run_synthesis' own defaults for one target): issue 22's "one 256² turbulence synthesis
# in <= 60 s". The target is drawn (and cached) before the clock starts.
_ONE_FIELD = """
import json, resource, time
import torch
torch.set_num_threads({threads})
from wavephase.experiments.synthesis import default_synthesis_settings, load_fields
from wavephase.synthesis import synthesize
target = load_fields("turbulence", {size}, 1, {seed}, progress=False, cache=True)
t = time.perf_counter()
result = synthesize(target, "phase-harmonics", n_samples=1, steps={steps}, random_state={seed}, progress=False,
                    **default_synthesis_settings("turbulence", 1))
wall = time.perf_counter() - t
print(json.dumps({{"wall_s": wall, "steps_done": result.steps_done,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}}))
"""


def _child(python: str, code: str, timeout: float, src: Path = ROOT / "src") -> dict:
    env = dict(os.environ, PYTHONPATH=str(src) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child ({python}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(name: str, r: dict) -> str:
    best = min(r["times"])
    med = sorted(r["times"])[len(r["times"]) // 2]
    return (f"{name:<10} fwd+bwd best {best:8.3f} s  median {med:8.3f} s  peak RSS {r['peak_mb']:8.0f} MB  "
            f"(+{r['peak_mb'] - r['base_mb']:.0f} MB over setup)  {r['n_coeffs']} coefficients")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table (and optionally write JSON).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments.

    Returns
    -------
    int
        Exit status.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=None, help="field side (256; --against: 128)")
    p.add_argument("--J", type=int, default=None, help="scales (6; --against: log2(size) - 2)")
    p.add_argument("--L", type=int, default=8)
    p.add_argument("--dn", type=int, default=2)
    p.add_argument("--reps", type=int, default=3, help="forward+backward repetitions per implementation")
    p.add_argument("--threads", type=int, default=None, help="torch threads (2; --against: 1 for every model)")
    p.add_argument("--pywph-python", default=None, help="interpreter with pywph 1.1.3 installed")
    p.add_argument("--synthesis-steps", type=int, default=100)
    p.add_argument("--synthesis-samples", type=int, default=1)
    p.add_argument("--no-synthesis", action="store_true", help="skip the full-synthesis timings")
    p.add_argument("--one-field-seeds", type=int, nargs="*", default=[0, 1, 2],
                   help="seeds of the one-field turbulence syntheses at the turbulence-256-one recipe's settings "
                        "(--size, --synthesis-steps; the first run simulates and caches each target)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--baseline-src", type=Path, default=None,
                   help="also time the wavephase package under this src folder (before a change): the statistics "
                        "in alternation with ours (two processes each), and the texture synthesis")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per child process (1800; --against: 36000, pywph's fields are kept as they finish)")
    p.add_argument("--record", default=None,
                   help="record for the results page (default benchmarks/results/synthesis_speed.json)")
    p.add_argument("--against", choices=["pywph"], default=None,
                   help="syntheses from one field side by side with pywph (see synthesis_against.py)")
    p.add_argument("--fields", default="turbulence:128,ising:128",
                   help="--against: comma-separated kind:size cases (kind: turbulence or ising)")
    p.add_argument("--n-syntheses", type=int, default=4, help="--against: fields per model")
    p.add_argument("--n-pywph", type=int, default=None,
                   help="--against: pywph's fields, if fewer than --n-syntheses (minutes each on 2 cores)")
    p.add_argument("--n-heldout", type=int, default=16, help="--against: held-out true fields")
    p.add_argument("--work-dir", default="/tmp/wavephase-bench-against",
                   help="--against: where each model's fields are kept, so that a rerun resumes")
    args = p.parse_args(argv)
    if args.against:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from synthesis_against import main_against

        args.threads = 1 if args.threads is None else args.threads
        args.timeout = 36000.0 if args.timeout is None else args.timeout
        args.record = args.record or str(ROOT / "benchmarks" / "results" / "synthesis_against_pywph.json")
        return main_against(args)
    args.size = 256 if args.size is None else args.size
    args.J = 6 if args.J is None else args.J
    args.threads = 2 if args.threads is None else args.threads
    args.timeout = 1800.0 if args.timeout is None else args.timeout
    fmt = dict(threads=args.threads, size=args.size, J=args.J, L=args.L, dn=args.dn, reps=args.reps)
    print(f"statistics forward+backward, {args.size}x{args.size}, J={args.J}, L={args.L}, dn={args.dn}, "
          f"{args.threads} thread(s)")
    results: dict = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    if args.baseline_src is not None and not (args.baseline_src / "wavephase" / "__init__.py").is_file():
        p.error(f"--baseline-src {args.baseline_src} holds no wavephase package; give the src folder of a checkout.")
    if args.baseline_src is None:
        results["wavephase"] = _child(sys.executable, _WAVEPHASE.format(**fmt), args.timeout)
    else:
        # Alternated, so that a change of the machine's speed during the run falls on both.
        runs = {"wavephase": [], "before": []}
        for _ in range(2):
            runs["wavephase"].append(_child(sys.executable, _WAVEPHASE.format(**fmt), args.timeout))
            runs["before"].append(_child(sys.executable, _WAVEPHASE.format(**fmt), args.timeout,
                                         args.baseline_src.resolve()))
        for name, pair in runs.items():
            results[name] = {**pair[-1], "times": [t for r in pair for t in r["times"]]}
        print(_summary("before", results["before"]), flush=True)
    print(_summary("wavephase", results["wavephase"]), flush=True)
    if args.pywph_python:
        results["pywph"] = _child(args.pywph_python, _PYWPH.format(**fmt), args.timeout)
        print(_summary("pywph", results["pywph"]), flush=True)
        w, q = results["wavephase"], results["pywph"]
        speed = min(q["times"]) / min(w["times"])
        mem = (q["peak_mb"] - q["base_mb"]) / max(w["peak_mb"] - w["base_mb"], 1e-9)
        results["ratios"] = {"speedup": speed, "memory_ratio_over_setup": mem,
                             "peak_rss_ratio": q["peak_mb"] / w["peak_mb"]}
        print(f"ratios     pywph / wavephase: time {speed:.1f}x, memory over setup {mem:.1f}x, "
              f"peak RSS {q['peak_mb'] / w['peak_mb']:.1f}x")
    if not args.no_synthesis:
        s = _child(sys.executable, _SYNTHESIS.format(threads=args.threads, size=args.size,
                                                    steps=args.synthesis_steps, n_samples=args.synthesis_samples),
                   args.timeout)
        results["synthesis"] = s
        if args.baseline_src is not None:
            results["synthesis_before"] = _child(sys.executable, _SYNTHESIS.format(
                threads=args.threads, size=args.size, steps=args.synthesis_steps, n_samples=args.synthesis_samples),
                args.timeout, args.baseline_src.resolve())
            print(f"synthesis  before: {results['synthesis_before']['wall_s']:.1f} s "
                  f"({results['synthesis_before']['evaluations']} evaluations)")
        print(f"synthesis  {args.synthesis_samples} field(s) {args.size}x{args.size}, {s['steps_done']} L-BFGS steps "
              f"({s['evaluations']} evaluations): {s['wall_s']:.1f} s, loss {s['loss_first']:.3g} -> "
              f"{s['loss_last']:.3g}, peak RSS {s['peak_mb']:.0f} MB")
        one = [_child(sys.executable, _ONE_FIELD.format(threads=args.threads, size=args.size, seed=seed,
                                                        steps=args.synthesis_steps), args.timeout)
               for seed in args.one_field_seeds]
        if one:
            results["one_field"] = {"seeds": args.one_field_seeds, "runs": one}
            print(f"one field  turbulence {args.size}x{args.size} at the turbulence-256-one settings, "
                  f"{args.synthesis_steps} L-BFGS steps, seeds {args.one_field_seeds}: "
                  + ", ".join(f"{r['wall_s']:.1f} s" for r in one))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    write_synthesis_record(results, args)
    return 0


def write_synthesis_record(results: dict, args: argparse.Namespace) -> None:
    """The record of this run for the results page (speed and memory against pywph, synthesis time)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record import describe_checkout, headline, write_record

    w = results["wavephase"]
    case = f"{args.size}², J={args.J}, L={args.L}, dn={args.dn}"
    headlines, rows = [], [["wavephase", min(w["times"]), max(w["times"]), w["peak_mb"] - w["base_mb"]]]
    if "pywph" in results:
        q = results["pywph"]
        rows.append(["pywph 1.1.3", min(q["times"]), max(q["times"]), q["peak_mb"] - q["base_mb"]])
        headlines.append(headline(f"statistics forward+backward ({case}): speed-up over pywph 1.1.3",
                                  results["ratios"]["speedup"], "x",
                                  spread=(min(q["times"]) / max(w["times"]), max(q["times"]) / min(w["times"])),
                                  note="best of the repeats; spread from the slowest and fastest repeats"))
        headlines.append(headline(f"statistics forward+backward ({case}): memory over setup, pywph / wavephase",
                                  results["ratios"]["memory_ratio_over_setup"], "x"))
    # Issue 22's figure second: the README's table shows the first three.
    if "one_field" in results:
        walls = sorted(r["wall_s"] for r in results["one_field"]["runs"])
        headlines.append(headline(f"one synthesis from one {args.size}² turbulence field (turbulence-256-one "
                                  f"settings, {args.synthesis_steps} L-BFGS steps)", walls[len(walls) // 2], "s",
                                  spread=(walls[0], walls[-1]),
                                  note=f"median over seeds {results['one_field']['seeds']}, slowest and fastest"))
    if "before" in results:
        b = results["before"]
        rows.append(["wavephase before", min(b["times"]), max(b["times"]), b["peak_mb"] - b["base_mb"]])
        headlines.append(headline(f"statistics forward+backward ({case}): after / before (time)",
                                  min(b["times"]) / min(w["times"]), "x",
                                  note="best of the repeats, two processes each in alternation"))
    if "synthesis" in results:
        syn = results["synthesis"]
        headlines.append(headline(f"synthesis of {args.synthesis_samples} field(s) of {args.size}², "
                                  f"{syn['steps_done']} L-BFGS steps", syn["wall_s"], "s"))
        if "synthesis_before" in results:
            before = results["synthesis_before"]
            headlines.append(headline("synthesis: after / before (time per evaluation)",
                                      (before["wall_s"] / before["evaluations"]) / (syn["wall_s"] / syn["evaluations"]),
                                      "x"))
    write_record("synthesis_speed", application="synthesis", title="Phase-harmonic statistics against pywph",
                 headlines=headlines, path=args.record,
                 tables=[{"title": f"forward+backward of the statistics, {args.reps} repeats in one process each",
                          "columns": ["implementation", "fastest (s)", "slowest (s)", "peak memory over setup (MB)"],
                          "rows": rows}],
                 notes=[f"{args.threads} threads; pywph runs its default model (S11, S00, S01, C01, Cphase, L) with "
                        "its chunked gradient loop, as in its synthesis examples.",
                        "The one-field syntheses use run_synthesis' settings for one turbulence target (spectral "
                        "preconditioning, default_synthesis_settings('turbulence', 1)): the quality of those "
                        "settings over seeds 0-2 is the record turbulence_one (8 syntheses per seed).",
                        *([f"wavephase before: {describe_checkout(args.baseline_src)}."] if args.baseline_src
                          else [])])



if __name__ == "__main__":
    sys.exit(main())
