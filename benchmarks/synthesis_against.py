"""Syntheses from one field, side by side with pywph 1.1.3 (``bench_synthesis.py --against pywph``).

For each case (one field kind at one size) one target field is drawn (seed 0), and
held-out true fields from independent simulations (seed 1) are the reference of every
metric. Four sets of fields are scored against them:

* **wavephase**: :func:`wavephase.synthesis.synthesize` from the one target, phase harmonic
  statistics, the same ``J``, ``L``, ``dn`` as pywph, ``iterations`` L-BFGS steps, one field
  per minimisation as pywph's recipe makes them;
* **pywph (same iterations)**: pywph's documented synthesis recipe, written here from its
  examples: the target standardised, its coefficients with ``norm="auto"`` and periodic
  boundaries, a white-noise start with the target's mean and variance, SciPy's L-BFGS-B
  (``maxcor=20``, ``gtol=ftol=1e-14``) on the chunked loss, one field per minimisation, at
  most ``iterations`` iterations;
* **pywph (same wall time)**: the same, stopped when it has used the seconds per field of
  ours (its callback ends the minimisation after the iteration that crosses the budget);
* **Gaussian model** from the same target, and **true fields** (seed 2, as many as the
  syntheses): the spread that true fields themselves show against the held-out ones, the
  floor below which no error can be judged; and **the target** itself (every metric but the
  discrimination, which needs two fields): syntheses that match its moments inherit its
  distance to the held-out fields.

Every metric of issue 22 (item 1) is reported per set, and the held-out accuracy of
:func:`wavephase.metrics.discrimination.discrimination_accuracy` on 64x64 crops.
Each model's fields are kept in ``--work-dir`` so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# pywph's synthesis recipe (its examples: standardise, norm="auto", L-BFGS-B with maxcor 20, gtol = ftol = 1e-14)
_PYWPH_SYNTHESIS = """
import json, sys, time
import numpy as np, torch, scipy.optimize as opt
import pywph as pw
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
target = np.load(cfg["target"]).astype(np.float64)
M, N = target.shape
mu, sd = target.mean(), target.std()
data = (target - mu) / sd
op = pw.WPHOp(M, N, cfg["J"], L=cfg["L"], dn=cfg["dn"], device="cpu")
coeffs = op.apply(data, norm="auto", pbc=True)

def objective(x):
    u = torch.from_numpy(x.reshape(M, N)).requires_grad_(True)
    up, chunks = op.preconfigure(u, requires_grad=True, pbc=True)
    loss = 0.0
    for i in range(chunks):
        c, idx = op.apply(up, i, norm="auto", ret_indices=True, pbc=True)
        part = (c - coeffs[idx]).abs().square().sum()
        part.backward(retain_graph=True)
        loss += float(part.detach())
        del c, idx, part
    return loss, u.grad.detach().numpy().astype(np.float64).ravel()

import os
for i in range(cfg["n"]):
    done = cfg["out"] + f"-{i}.npz"
    if os.path.exists(done):  # kept by an interrupted run
        continue
    rng = np.random.default_rng(cfg["seed"] + i)
    x0 = rng.normal(data.mean(), data.std(), (M, N))
    t0 = time.perf_counter()
    budget = cfg["seconds"]

    def stop(intermediate_result):
        if budget is not None and time.perf_counter() - t0 >= budget:
            raise StopIteration

    res = opt.minimize(objective, x0.ravel(), method="L-BFGS-B", jac=True, callback=stop,
                       options={"maxiter": cfg["iterations"], "gtol": 1e-14, "ftol": 1e-14, "maxcor": 20})
    wall = time.perf_counter() - t0
    info = {"seconds": wall, "iterations": int(res.nit), "evaluations": int(res.nfev), "loss": float(res.fun)}
    np.savez(cfg["out"] + f"-{i}.tmp.npz", field=(res.x.reshape(M, N) * sd + mu).astype(np.float32),
             info=json.dumps(info))
    os.replace(cfg["out"] + f"-{i}.tmp.npz", done)
    print(json.dumps({"field": i, **info}), file=sys.stderr, flush=True)
"""


def _pywph(python: str, target: Path, out: Path, *, n: int, J: int, L: int, dn: int, iterations: int,
           seconds: float | None, threads: int, seed: int, timeout: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """pywph's syntheses of ``n`` fields, each kept in ``out-<i>.npz`` as soon as it is done (a rerun resumes)."""
    cfg = dict(target=str(target), out=str(out), n=n, J=J, L=L, dn=dn, iterations=iterations, seconds=seconds,
               threads=threads, seed=seed)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log = Path(str(out) + ".log")  # one JSON line per finished field: the progress of a long run
    with open(log, "a") as err:
        proc = subprocess.run([python, "-c", _PYWPH_SYNTHESIS, json.dumps(cfg)], stderr=err, env=env,
                              timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"pywph synthesis ({python}) failed:\n{log.read_text()[-3000:]}")
    fields, infos = [], []
    for i in range(n):
        with np.load(f"{out}-{i}.npz") as z:
            fields.append(z["field"])
            infos.append(json.loads(str(z["info"])))
    return np.stack(fields), infos


def _load(kind: str, size: int, n: int, seed: int) -> torch.Tensor:
    from wavephase.experiments.synthesis import load_fields

    return load_fields(kind, size, n, seed, progress=False, cache=kind == "turbulence").double()


def _ours(target: torch.Tensor, kind: str, n: int, J: int, L: int, dn: int, iterations: int,
          statistics: str = "phase-harmonics") -> dict[str, Any]:
    """Our ``n`` syntheses, each from its own minimisation (seed ``i``), as pywph's recipe makes its fields.

    One L-BFGS run per field, not one for the batch: a batch shares its line searches
    and curvature pairs across fields, which converges more slowly per iteration
    (Ising 128², 100 iterations: energy 18 % off in one batch of 4, 12 % one by one).
    """
    from wavephase.experiments.synthesis import default_synthesis_settings
    from wavephase.synthesis import synthesize

    # The settings run_synthesis uses for each kind from one target.
    settings = default_synthesis_settings(kind, 1, statistics)
    fields, seconds, steps, evaluations, losses = [], 0.0, [], [], []
    for i in range(n):
        result = synthesize(target.float(), statistics, n_samples=1, steps=iterations, random_state=i, J=J, L=L,
                            dn=dn, progress=False, **settings)
        fields.append(result.fields.double().cpu())
        seconds += result.seconds
        steps.append(result.steps_done)
        evaluations.append(result.evaluations)
        losses.append(result.loss_history[-1] if result.loss_history else None)
    return {"fields": torch.cat(fields), "seconds": seconds / n, "iterations": float(np.mean(steps)),
            "evaluations": float(np.mean(evaluations)), "loss": losses}


def _gaussian(target: torch.Tensor, n: int) -> dict[str, Any]:
    from wavephase.synthesis import synthesize

    result = synthesize(target.float(), "gaussian", n_samples=n, random_state=1, progress=False)
    return {"fields": result.fields.double().cpu(), "seconds": result.seconds / n, "iterations": 0}


def score(fields: torch.Tensor, heldout: torch.Tensor, kind: str, seed: int = 0,
          discriminate: bool = True) -> dict[str, Any]:
    """Every metric of issue 22's item 1 and the discrimination accuracy, of one set against the held-out fields.

    Parameters
    ----------
    fields : torch.Tensor
        ``(n, M, N)`` fields to score.
    heldout : torch.Tensor
        ``(n', M, N)`` held-out true fields.
    kind : str
        ``"turbulence"`` or ``"ising"``.
    seed : int
        Seed of the discrimination's crops and folds.
    discriminate : bool
        Also train the discrimination classifier (it needs at least two fields; without
        it both of its entries are None).

    Returns
    -------
    dict
        Relative errors (``*_error``), values and the discrimination accuracy with its standard error.
    """
    from wavephase.metrics import compare_fields, structure_functions
    from wavephase.metrics.discrimination import discrimination_accuracy

    cmp = compare_fields(fields, heldout, kind=kind, n_groups=0)
    out: dict[str, Any] = {
        "spectrum_octave_worst_error": cmp["spectrum_per_octave"]["relative_error_synthesis"],
        "spectrum_per_octave": cmp["spectrum_per_octave"]["synthesis"],
        "power_spectrum_logrms": cmp["power_spectrum"]["relative_error_synthesis"],
        "flatness_error": cmp["flatness"]["relative_error_synthesis"], "flatness": cmp["flatness"]["synthesis"],
        "pixel_pdf_tv": cmp["pixel_pdf"]["relative_error_synthesis"],
    }
    if kind == "turbulence":
        lags = [1, 2, 4, 8]
        f_s = structure_functions(fields, (2, 4), lags)["flatness"]
        f_t = structure_functions(heldout, (2, 4), lags)["flatness"]
        out["increment_flatness"] = f_s.tolist()
        out["increment_flatness_error"] = float(np.max(np.abs(f_s - f_t) / f_t))
    else:
        for name in ("energy", "abs_magnetisation"):
            out[f"{name}_error"] = cmp[name]["relative_error_synthesis"]
            out[name] = cmp[name]["synthesis"]
        out["spin_histogram_tv"] = cmp["spin_histogram"]["relative_error_synthesis"]
    if not discriminate:
        return {**out, "discrimination_accuracy": None, "discrimination_se": None}
    side = min(heldout.shape[-2:])
    disc = discrimination_accuracy(fields, heldout, crop=min(64, side // 2), random_state=seed)
    out["discrimination_accuracy"] = disc["accuracy"]
    out["discrimination_se"] = disc["standard_error"]
    return out


def truth_values(heldout: torch.Tensor, kind: str) -> dict[str, Any]:
    """The held-out fields' own values of the metrics of :func:`score` (what the errors are relative to).

    Parameters
    ----------
    heldout : torch.Tensor
        ``(n', M, N)`` held-out true fields.
    kind : str
        ``"turbulence"`` or ``"ising"``.

    Returns
    -------
    dict
        ``spectrum_per_octave``, ``flatness`` and ``increment_flatness`` (turbulence) or
        ``energy`` and ``abs_magnetisation`` (Ising).
    """
    from wavephase.metrics import compare_fields, structure_functions

    cmp = compare_fields(heldout, heldout, kind=kind, n_groups=0)
    out = {"spectrum_per_octave": cmp["spectrum_per_octave"]["truth"], "flatness": cmp["flatness"]["truth"]}
    if kind == "turbulence":
        out["increment_flatness"] = structure_functions(heldout, (2, 4), [1, 2, 4, 8])["flatness"].tolist()
    else:
        out.update({k: cmp[k]["truth"] for k in ("energy", "abs_magnetisation")})
    return out


def _cached(path: Path, make: Any) -> dict[str, Any]:
    """``make()``'s fields and figures, kept in ``path`` (``.npz``) so that a rerun resumes."""
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {"fields": torch.from_numpy(z["fields"]).double(), **json.loads(str(z["info"]))}
    r = make()
    info = {k: v for k, v in r.items() if k != "fields"}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, fields=r["fields"].numpy(), info=json.dumps(info))
    os.replace(tmp, path)
    return r


def _source_hash() -> str:
    """Hash of the synthesis and moment sources and of the default options: a change invalidates our kept fields."""
    import hashlib

    h = hashlib.sha256()
    src = ROOT / "src" / "wavephase"
    for path in [*sorted((src / "synthesis").glob("*.py")), *sorted((src / "harmonics").glob("*.py")),
                 src / "experiments" / "synthesis.py"]:
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def run_case(kind: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Synthesise and score one case (see the module docstring).

    Parameters
    ----------
    kind : str
        ``"turbulence"`` or ``"ising"``.
    size : int
        Field side.
    args : argparse.Namespace
        The benchmark's arguments (``n_syntheses``, ``n_heldout``, ``J``, ``L``, ``dn``,
        ``synthesis_steps``, ``threads``, ``pywph_python``, ``work_dir``, ``timeout``).

    Returns
    -------
    dict
        ``{"case", "models": {name: {"seconds_per_field", "iterations", metrics...}}}``.
    """
    from wavephase.synthesis import default_J

    n, iters = args.n_syntheses, args.synthesis_steps
    J = args.J if args.J is not None else default_J((size, size))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}{size}-J{J}-L{args.L}-dn{args.dn}-n{n}-it{iters}-t{args.threads}"
    t = time.perf_counter()
    target = _load(kind, size, 1, 0)
    heldout = _load(kind, size, args.n_heldout, 1)
    spread = _load(kind, size, n, 2)
    print(f"{kind} {size}²: 1 target, {heldout.shape[0]} held-out and {n} more true fields "
          f"({time.perf_counter() - t:.0f} s)", flush=True)
    target_file = work / f"{kind}{size}-target.npy"
    np.save(target_file, target[0].numpy())
    torch.set_num_threads(args.threads)
    models: dict[str, dict[str, Any]] = {}
    models["wavephase"] = _cached(work / f"{stem}-wavephase-each-{_source_hash()}.npz",
                                  lambda: _ours(target[0], kind, n, J, args.L, args.dn, iters))
    print(f"  wavephase: {models['wavephase']['seconds']:.1f} s per field", flush=True)
    budget = models["wavephase"]["seconds"]

    n_py = args.n_pywph or n

    def pywph(seconds: float | None, label: str) -> dict[str, Any]:
        fields, info = _pywph(args.pywph_python, target_file, work / f"{stem}-pywph-{label}", n=n_py, J=J, L=args.L,
                              dn=args.dn, iterations=iters, seconds=seconds, threads=args.threads, seed=0,
                              timeout=args.timeout)
        return {"fields": torch.from_numpy(fields).double(),
                "seconds": float(np.mean([i["seconds"] for i in info])),
                "iterations": float(np.mean([i["iterations"] for i in info])),
                "evaluations": float(np.mean([i["evaluations"] for i in info]))}

    models["pywph, same iterations"] = _cached(work / f"{stem}-pywph{n_py}-iters.npz", lambda: pywph(None, "iters"))
    print(f"  pywph (same iterations): {models['pywph, same iterations']['seconds']:.1f} s per field", flush=True)
    models["pywph, same wall time"] = _cached(work / f"{stem}-pywph{n_py}-wall-{budget:.1f}.npz",
                                              lambda: pywph(budget, f"wall-{budget:.1f}"))
    print(f"  pywph (same wall time): {models['pywph, same wall time']['iterations']:.1f} iterations", flush=True)
    # our own scattering covariance (Cheng et al.'s statistics; their package cannot be installed here)
    models["wavephase scattering cov."] = _cached(
        work / f"{stem}-wavephase-scov-each-{_source_hash()}.npz",
        lambda: _ours(target[0], kind, n, J, args.L, args.dn, iters, "scattering-covariance"))
    models["Gaussian model"] = _gaussian(target[0], n)
    models["true fields"] = {"fields": spread, "seconds": None, "iterations": None}
    scored = {}
    for name, m in models.items():
        scored[name] = {"n_fields": int(m["fields"].shape[0]), "seconds_per_field": m["seconds"],
                        "iterations": m.get("iterations"),
                        **score(m["fields"], heldout, kind)}
        print(f"  scored {name}: discrimination {scored[name]['discrimination_accuracy']:.3f}", flush=True)
    scored["the target"] = {"n_fields": 1, "seconds_per_field": None, "iterations": None,
                            **score(target, heldout, kind, discriminate=False)}
    truth = truth_values(heldout, kind)
    _figure(work / f"{stem}.png", target[0], models, kind)
    return {"case": f"{kind} {size}²", "kind": kind, "size": size, "J": J, "n_heldout": int(heldout.shape[0]),
            "n_syntheses": n, "iterations": iters, "truth": truth, "models": scored}


def _figure(path: Path, target: torch.Tensor, models: dict[str, dict[str, Any]], kind: str) -> None:
    """Target and the first field of each model, side by side (for the eye; not part of the record)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("target", target)] + [(k, m["fields"][0]) for k, m in models.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3))
    lo, hi = float(np.percentile(target.numpy(), 0.5)), float(np.percentile(target.numpy(), 99.5))
    for ax, (label, f) in zip(axes, panels):
        ax.imshow(f.numpy(), cmap="gray" if kind == "ising" else "RdBu_r", vmin=lo, vmax=hi)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# (key of score(), column title); the Ising and turbulence cases show their own metrics
_COLUMNS = {
    "turbulence": [("spectrum_octave_worst_error", "worst octave err"), ("flatness_error", "flatness err"),
                   ("increment_flatness_error", "increment flatness err (lags 1-8)"),
                   ("pixel_pdf_tv", "pixel PDF TV")],
    "ising": [("energy_error", "energy err"), ("abs_magnetisation_error", "<|m|> err"),
              ("pixel_pdf_tv", "histogram TV"), ("spin_histogram_tv", "spin-value TV"),
              ("spectrum_octave_worst_error", "worst octave err")],
}


def write_against_record(cases: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    """The record of ``--against pywph`` for the results page: one table per case, headlines per case.

    Parameters
    ----------
    cases : list of dict
        :func:`run_case` outputs.
    args : argparse.Namespace
        The benchmark's arguments.

    Returns
    -------
    Path
        The record written.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record import headline, write_record

    headlines, tables = [], []
    for c in cases:
        m = c["models"]
        ours, py, gauss = m["wavephase"], m["pywph, same iterations"], m["Gaussian model"]
        headlines.append(headline(
            f"{c['case']} from one field: discrimination accuracy of crops of our syntheses "
            "(0.5: indistinguishable)", ours["discrimination_accuracy"], "",
            baseline=("pywph 1.1.3, same iterations", py["discrimination_accuracy"]),
            note=f"± {ours['discrimination_se']:.2f}; Gaussian model {gauss['discrimination_accuracy']:.2f}, "
                 f"true fields {m['true fields']['discrimination_accuracy']:.2f}"))
        headlines.append(headline(
            f"{c['case']} from one field, {c['iterations']} L-BFGS iterations: seconds per field, "
            "pywph 1.1.3 / wavephase", py["seconds_per_field"] / ours["seconds_per_field"], "x",
            note=f"{ours['seconds_per_field']:.1f} s against {py['seconds_per_field']:.0f} s"))
        cols = _COLUMNS[c["kind"]]
        rows = []
        for name, r in m.items():
            its = r["iterations"]
            disc = r["discrimination_accuracy"]
            rows.append([name, r["n_fields"], r["seconds_per_field"], its] + [r[k] for k, _ in cols]
                        + [None if disc is None else f"{disc:.2f} ± {r['discrimination_se']:.2f}"])
        tables.append({"title": f"{c['case']}: fields synthesised from one target, scored against "
                                f"{c['n_heldout']} held-out true fields (J={c['J']}, L={args.L}, dn={args.dn})",
                       "columns": ["model", "fields", "s / field", "iterations"] + [t for _, t in cols]
                                  + ["discrimination accuracy"],
                       "rows": rows})
    notes = [
        f"Measured on a shared 2-core machine, {args.threads} torch thread(s) for every model; seconds are "
        "ratios of runs made one after the other in one benchmark run. Both make one field per minimisation, pywph by "
        "L-BFGS-B as in its examples, ours by synthesize(n_samples=1) with seed i for field i.",
        "The target row is the one field whose moments every model matches, scored like the syntheses: a "
        "synthesis that matches it closely inherits its distance to the held-out fields, so where the target is "
        "itself far off (e.g. the turbulence target's increment flatness), no faithful model can be closer.",
        "Errors are relative to the held-out true fields (worst octave: max over dyadic bands of the power "
        "spectrum up to Nyquist; increment flatness: max over lags 1, 2, 4, 8; TV: total variation of the pixel "
        "histogram standardised by the truth; spin-value TV: of the fractions of values within 0.25 of -1, of +1, "
        "between and beyond, not thresholded). Ising energy and <|m|> are those of sign(x).",
        "Cheng et al.'s scattering-covariance package ('scattering', SihaoCheng/scattering_transform on GitHub) "
        "is not compared: it is not on PyPI (pip finds no distribution named 'scattering'; its README installs it "
        "by copying the folder from the repository), this machine reaches no other source, and PyPI's "
        "'scattering-transform' 0.0.7 is another project (the Scattering Compositional Learner). The row "
        "'wavephase scattering cov.' is our own implementation of those statistics (synthesize(..., "
        "'scattering-covariance')), at the same J, L and iterations.",
        "The row 'true fields' scores as many independent true fields as there are syntheses: the floor below which "
        "an error cannot be told from sampling noise.",
        "Discrimination: held-out balanced accuracy of a scattering + logistic-regression classifier on 64x64 crops "
        "(16 per field), split by field into folds (wavephase.metrics.discrimination); ± its standard error "
        "(a lower estimate).",
    ]
    return write_record("synthesis_against_pywph", application="synthesis",
                        title="Syntheses from one field against pywph 1.1.3 and the Gaussian model",
                        headlines=headlines, tables=tables, notes=notes, path=args.record)


def main_against(args: argparse.Namespace) -> int:
    """``--against pywph``: run every case of ``args.fields``, print the tables and write the record.

    Parameters
    ----------
    args : argparse.Namespace
        The benchmark's arguments.

    Returns
    -------
    int
        Exit status.
    """
    if not args.pywph_python:
        raise SystemExit("--against pywph needs --pywph-python (an interpreter with pywph 1.1.3, e.g. "
                         "/work/main/.venv-pywph/bin/python; `make pywph-venv` builds one)")
    cases = []
    for spec in args.fields.split(","):
        kind, _, size = spec.partition(":")
        cases.append(run_case(kind, int(size or args.size or 128), args))
        c = cases[-1]
        cols = _COLUMNS[c["kind"]]
        print(f"\n{c['case']}: vs {c['n_heldout']} held-out true fields")
        heads = "".join(f"{t[:14]:>15}" for _, t in cols)
        print(f"{'model':<26}{'fields':>7}{'s/field':>9}{'iters':>7}{heads}   discrim.")
        for name, r in c["models"].items():
            sec = "-" if r["seconds_per_field"] is None else f"{r['seconds_per_field']:.1f}"
            its = "-" if r["iterations"] is None else f"{r['iterations']:.0f}"
            disc = "-" if r["discrimination_accuracy"] is None else \
                f"{r['discrimination_accuracy']:.2f} ± {r['discrimination_se']:.2f}"
            print(f"{name:<26}{r['n_fields']:>7}{sec:>9}{its:>7}" + "".join(f"{r[k]:>15.3f}" for k, _ in cols)
                  + f"   {disc}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "cases": cases}, indent=2))
    print(f"record: {write_against_record(cases, args)}")
    return 0
