"""Benchmark: wavephase.SolidHarmonicScattering3D against Kymatio 0.3.0 on molecules.

Seconds per molecule and peak memory of the full feature extraction (orders 0, 1,
2; channels full / valence / core; q in {0.5, 1, 2, 3}) on the same molecules:

* wavephase at the scattering's defaults (or ``--config`` overrides), or the whole
  invariants of a QM9 preset (``--preset``: scattering and atom-centred spectra), on
  ``--n`` molecules;
* Kymatio's ``HarmonicScattering3D`` at the settings of its QM7 example
  (``examples/3d/scattering3d_qm7.py``: grid 192 x 128 x 96, sigma 2, J=2, L=3,
  integral powers 0.5, 1, 2, 3, densities full / valence / core, positions
  rescaled so that the closest atom pair is ``sigma sqrt(-8 log 0.1)`` grid units
  apart) on the first ``--n-kymatio`` molecules (it is slow).

Molecules are real QM9 molecules when the QM9 cache of ``wavephase.data.load_qm9``
is present (``--source qm9``, the default falls back to synthetic ones), else
random QM9-like ones (``--source synthetic``: ~18 atoms, H/C/N/O trees with bonds
1.0-1.5 angstrom). Each implementation runs in a fresh subprocess with the same
number of threads, so that peak memory (max RSS) is its own. Kymatio needs SciPy
< 1.15 and runs from its own interpreter (``make kymatio-venv`` creates
``.venv-kymatio``).

Usage: python benchmarks/bench_molecules.py [--n 200] [--n-kymatio 2] [--threads 2]
           [--source auto|qm9|synthetic] [--preset cpu|fast|full|spectrum|scattering] [--config '{"grid_step": 0.7}'] [--grad]
           [--kymatio-python PATH] [--json out.json] [--no-progress]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VALENCE = {1: 1, 6: 4, 7: 5, 8: 6, 9: 7}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_molecules(n: int, seed: int = 0, max_atoms: int = 29) -> tuple[np.ndarray, np.ndarray]:
    """Random QM9-like molecules: a heavy-atom tree (C/N/O, bonds 1.2-1.55 A) with hydrogens (1.0-1.1 A).

    Returns ``positions (n, max_atoms, 3)`` float32 and ``charges (n, max_atoms)`` float32, 0-padded.
    """
    rng = np.random.default_rng(seed)
    positions = np.zeros((n, max_atoms, 3), np.float32)
    charges = np.zeros((n, max_atoms), np.float32)
    for i in range(n):
        n_heavy = int(rng.integers(5, 10))
        atoms: list[np.ndarray] = [np.zeros(3)]
        z = [6]
        while len(atoms) < n_heavy:
            base = atoms[int(rng.integers(len(atoms)))]
            step = rng.normal(size=3)
            cand = base + step / np.linalg.norm(step) * rng.uniform(1.2, 1.55)
            if min(np.linalg.norm(cand - a) for a in atoms) > 1.15 and np.abs(cand).max() < 4.0:
                atoms.append(cand)
                z.append(int(rng.choice([6, 6, 6, 7, 8])))
        n_h = min(max_atoms - n_heavy, int(rng.integers(n_heavy, 2 * n_heavy + 3)))
        tries = 0
        while len(atoms) < n_heavy + n_h and tries < 2000:
            tries += 1
            base = atoms[int(rng.integers(n_heavy))]
            step = rng.normal(size=3)
            cand = base + step / np.linalg.norm(step) * rng.uniform(1.0, 1.1)
            if min(np.linalg.norm(cand - a) for a in atoms) > 0.95:
                atoms.append(cand)
                z.append(1)
        k = len(atoms)
        positions[i, :k] = np.stack(atoms)
        charges[i, :k] = z
    return positions, charges


def load_molecules(source: str, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` molecules from QM9 (random fixed subset) or synthetic ones, and a label."""
    if source in ("auto", "qm9"):
        try:
            from wavephase.data.qm9 import load_qm9

            data = load_qm9(download=False)
            rows = np.random.default_rng(0).choice(len(data["charges"]), n, replace=False)
            return (np.asarray(data["positions"])[rows].astype(np.float32),
                    np.asarray(data["charges"])[rows].astype(np.float32), "QM9 (random subset, seed 0)")
        except (ImportError, FileNotFoundError) as err:
            if source == "qm9":
                raise SystemExit(f"QM9 is not available: {err}")
    pos, z = synthetic_molecules(n)
    return pos, z, "synthetic QM9-like"


def worker_wavephase(path: str, threads: int, config: dict, grad: bool, progress: bool) -> dict:
    import torch
    from tqdm import tqdm

    from wavephase import SolidHarmonicScattering3D
    from wavephase.models.molecule_features import qm9_invariants

    torch.set_num_threads(threads)
    data = np.load(path)
    pos, z = torch.from_numpy(data["positions"]), torch.from_numpy(data["charges"])
    # A QM9 preset ({"scattering": ..., "spectrum": ...}) or keyword arguments of the scattering.
    S = qm9_invariants(config) if set(config) & {"scattering", "spectrum"} else SolidHarmonicScattering3D(**config)
    chunk = getattr(S, "chunk_size", 16)
    S(pos[:2], z[:2])  # warm-up
    base = _rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    outs = []
    for i in tqdm(range(0, len(z), chunk), disable=not progress, desc="wavephase", leave=False):
        p = pos[i:i + chunk].clone().requires_grad_(grad)
        if grad:
            out = S(p, z[i:i + chunk])
            out.sum().backward()
        else:
            with torch.no_grad():
                out = S(p, z[i:i + chunk])
        outs.append(out.detach())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    feats = torch.cat(outs)
    return {"seconds_per_molecule": seconds / len(z), "cpu_seconds_per_molecule": cpu / len(z), "n": len(z),
            "peak_rss_mb": _rss_mb(),
            "peak_extra_mb": _rss_mb() - base, "n_features": S.output_size,
            "finite": bool(torch.isfinite(feats).all())}


def worker_kymatio(path: str, threads: int, progress: bool) -> dict:
    import torch
    from kymatio.scattering3d.backend.torch_backend import backend
    from kymatio.scattering3d.utils import generate_weighted_sum_of_gaussians
    from kymatio.torch import HarmonicScattering3D

    torch.set_num_threads(threads)
    data = np.load(path)
    pos, z = data["positions"].astype(np.float64), data["charges"].astype(np.float32)
    M, N, O, sigma, J, L, powers = 192, 128, 96, 2.0, 2, 3, [0.5, 1.0, 2.0, 3.0]
    # Kymatio's example rescales all molecules so that the closest pair is delta apart.
    min_dist = np.inf
    for p, c in zip(pos, z):
        q = p[c > 0]
        d = np.linalg.norm(q[:, None] - q[None], axis=-1)
        min_dist = min(min_dist, d[np.triu_indices(len(q), 1)].min())
    delta = sigma * np.sqrt(-8 * np.log(0.1))
    pos = pos * delta / min_dist
    full = z
    val = np.vectorize(lambda c: VALENCE.get(int(c), 0))(z).astype(np.float32)
    # Kymatio 0.3.0's density generator is NumPy (the example predates it).
    grid = np.fft.ifftshift(
        np.mgrid[-M // 2:-M // 2 + M, -N // 2:-N // 2 + N, -O // 2:-O // 2 + O].astype("float32"), axes=(1, 2, 3))
    S = HarmonicScattering3D(J=J, shape=(M, N, O), L=L, sigma_0=sigma, max_order=2, method="integral",
                             integral_powers=powers)
    base = _rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    n_features = 0
    for i in range(len(z)):
        sl = slice(i, i + 1)
        dens_full = torch.from_numpy(generate_weighted_sum_of_gaussians(grid, pos[sl], full[sl], sigma)).float()
        dens_val = torch.from_numpy(generate_weighted_sum_of_gaussians(grid, pos[sl], val[sl], sigma)).float()
        feats = []
        for dens in (dens_full, dens_val, dens_full - dens_val):
            feats.append(backend.compute_integrals(dens, powers).reshape(1, -1))
            feats.append(S(dens).reshape(1, -1))
        n_features = int(sum(f.shape[1] for f in feats))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"seconds_per_molecule": seconds / len(z), "cpu_seconds_per_molecule": cpu / len(z), "n": len(z),
            "peak_rss_mb": _rss_mb(), "peak_extra_mb": _rss_mb() - base, "n_features": n_features}


def run_worker(python: str, impl: str, path: str, args: argparse.Namespace) -> dict | None:
    cmd = [python, __file__, "--worker", impl, path, "--threads", str(args.threads), "--config", args.config]
    if args.grad:
        cmd.append("--grad")
    if args.no_progress:
        cmd.append("--no-progress")
    env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT / "src"), "HOME": str(Path.home())}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        print(f"  {impl} failed (exit {proc.returncode})", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="molecules for wavephase")
    parser.add_argument("--n-kymatio", type=int, default=2, help="molecules for Kymatio (0 to skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--source", choices=("auto", "qm9", "synthetic"), default="auto")
    parser.add_argument("--preset", help="time the invariants of wavephase.models.molecule_features.QM9_PRESETS[PRESET] (scattering and spectra; --config then changes the scattering part)")
    parser.add_argument("--config", default="{}", help="JSON keyword arguments for SolidHarmonicScattering3D")
    parser.add_argument("--grad", action="store_true", help="also backpropagate (forces)")
    default_kymatio = ROOT / ".venv-kymatio" / "bin" / "python"
    parser.add_argument("--kymatio-python", default=str(default_kymatio) if default_kymatio.exists() else None)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "NPZ"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.preset:
        from wavephase.models.molecule_features import QM9_PRESETS

        if args.preset not in QM9_PRESETS:
            parser.error(f"--preset must be one of {sorted(QM9_PRESETS)}, got {args.preset!r}")
        preset = dict(QM9_PRESETS[args.preset])
        if json.loads(args.config):
            if preset["scattering"] is None:
                parser.error(f"--preset {args.preset} has no scattering part for --config to change")
            preset["scattering"] = {**preset["scattering"], **json.loads(args.config)}
        args.config = json.dumps(preset)
    if args.worker:
        impl, path = args.worker
        if impl == "wavephase":
            res = worker_wavephase(path, args.threads, json.loads(args.config), args.grad, not args.no_progress)
        else:
            res = worker_kymatio(path, args.threads, not args.no_progress)
        print(json.dumps(res))
        return

    pos, z, label = load_molecules(args.source, max(args.n, args.n_kymatio))
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, theirs_path = str(Path(tmp) / "ours.npz"), str(Path(tmp) / "theirs.npz")
        np.savez(ours_path, positions=pos[: args.n], charges=z[: args.n])
        np.savez(theirs_path, positions=pos[: args.n_kymatio], charges=z[: args.n_kymatio])
        ours = run_worker(sys.executable, "wavephase", ours_path, args)
        theirs = None
        if args.kymatio_python and args.n_kymatio > 0:
            theirs = run_worker(args.kymatio_python, "kymatio", theirs_path, args)
            # Same molecules for the ratio: wavephase on Kymatio's subset too.
            ours_same = run_worker(sys.executable, "wavephase", theirs_path, args)
        else:
            ours_same = None

    n_atoms = (z[: args.n] > 0).sum(1)
    print(f"molecules: {label}, {args.n} for wavephase (mean {n_atoms.mean():.1f} atoms), "
          f"{args.n_kymatio if theirs else 0} for Kymatio; threads={args.threads}; "
          f"config={args.config}{'; forward+backward' if args.grad else ''}\n")
    # CPU seconds (all threads) are the figure to trust on a shared machine: wall time
    # there includes waiting for the other processes.
    print("| implementation | molecules | features | wall s / molecule | CPU s / molecule | peak RSS MB (extra) |")
    print("|---|---|---|---|---|---|")

    def row(name: str, r: dict | None) -> None:
        if r is None:
            print(f"| {name} | n/a | n/a | n/a | n/a | n/a |")
        else:
            print(f"| {name} | {r['n']} | {r['n_features']} | {r['seconds_per_molecule']:.4f} | "
                  f"{r['cpu_seconds_per_molecule']:.4f} | {r['peak_rss_mb']:.0f} ({r['peak_extra_mb']:.0f}) |")

    row("wavephase", ours)
    if theirs is not None:
        row("wavephase (Kymatio's molecules)", ours_same)
        row("Kymatio 0.3.0, QM7 example settings", theirs)
        if theirs and ours_same:
            print(f"\nspeed-up on the same molecules: wall "
                  f"{theirs['seconds_per_molecule'] / ours_same['seconds_per_molecule']:.0f}x, CPU "
                  f"{theirs['cpu_seconds_per_molecule'] / ours_same['cpu_seconds_per_molecule']:.0f}x")
    if ours:
        total = ours["seconds_per_molecule"] * 130_831 / 60
        ideal = ours["cpu_seconds_per_molecule"] / args.threads * 130_831 / 60
        print(f"projected wavephase time for all 130,831 QM9 molecules: {total:.0f} min at this wall rate, "
              f"{ideal:.0f} min if its CPU time were spread perfectly over {args.threads} idle cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"wavephase": ours, "wavephase_same": ours_same, "kymatio": theirs,
                                               "molecules": label, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
