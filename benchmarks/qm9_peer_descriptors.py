"""Peer descriptors for benchmarks/bench_qm9_peers.py, run inside the peers' virtual environment.

Needs only NumPy, ``dscribe`` and ``qmllib`` (``make peers-venv``), not wavephase:
``bench_qm9_peers.py`` writes the molecules to an ``.npz`` file, runs this script
with ``.venv-peers/bin/python`` and reads back what it writes.

* ``soap IN OUT``: the sum over atoms of the SOAP power spectrum of each atom
  (``dscribe``; ``average="outer"`` times the number of atoms), so that a ridge
  on it is a sum of atomic energies; float32 ``(N, D)`` to ``OUT`` (``.npy``).
* ``fchl IN OUT --sigmas ...``: FCHL19 representations (``qmllib``) and the
  local Gaussian kernels between the ``train`` molecules and themselves and
  between the ``validation``/``test`` molecules and the ``train`` ones, one per
  width, to ``OUT`` (``.npz``).
* ``time IN``: descriptor seconds per molecule of both, on the molecules of ``IN``.

Each mode prints one JSON line with its timings.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

ELEMENTS = (1, 6, 7, 8, 9)
SYMBOLS = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
# SOAP settings of common use for QM9-sized molecules (cutoff 5 A, 8 radial, l <= 6).
SOAP_SETTINGS = {"r_cut": 5.0, "n_max": 8, "l_max": 6, "sigma": 0.5}


def _atoms(positions: np.ndarray, charges: np.ndarray) -> list:
    from ase import Atoms

    out = []
    for p, z in zip(positions, charges):
        keep = z > 0
        out.append(Atoms(numbers=z[keep].astype(int), positions=p[keep].astype(np.float64)))
    return out


def soap(positions: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Summed SOAP power spectra, shape (N, D) float32."""
    from dscribe.descriptors import SOAP

    desc = SOAP(species=[SYMBOLS[e] for e in ELEMENTS], periodic=False, average="outer", **SOAP_SETTINGS)
    atoms = _atoms(positions, charges)
    out = np.empty((len(atoms), desc.get_number_of_features()), dtype=np.float32)
    for s in range(0, len(atoms), 500):
        out[s:s + 500] = desc.create(atoms[s:s + 500], n_jobs=1) * np.array([len(a) for a in atoms[s:s + 500]])[:, None]
    return out


def fchl(positions: np.ndarray, charges: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """FCHL19 representations padded to the largest molecule, and the charges of each molecule."""
    from qmllib.representations import generate_fchl19

    n_max = int((charges > 0).sum(1).max())
    reps, q = [], []
    for p, z in zip(positions, charges):
        keep = z > 0
        reps.append(generate_fchl19(z[keep].astype(int), p[keep].astype(np.float64), elements=list(ELEMENTS),
                                    pad=n_max))
        q.append(z[keep].astype(int).tolist())
    return np.asarray(reps), q


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("soap", "fchl", "time"))
    p.add_argument("inp")
    p.add_argument("out", nargs="?")
    p.add_argument("--sigmas", default="1,2,4,8")
    args = p.parse_args()
    d = np.load(args.inp)
    if args.mode == "time":
        # One untimed call each first: imports, numba compilation and set-up are not per molecule.
        soap(d["positions"][:2], d["charges"][:2])
        fchl(d["positions"][:2], d["charges"][:2])
        t = time.perf_counter()
        soap(d["positions"], d["charges"])
        t_soap = time.perf_counter() - t
        t = time.perf_counter()
        fchl(d["positions"], d["charges"])
        t_fchl = time.perf_counter() - t
        n = len(d["charges"])
        print(json.dumps({"soap_seconds_per_molecule": t_soap / n, "fchl19_seconds_per_molecule": t_fchl / n}))
        return 0
    if args.mode == "soap":
        t = time.perf_counter()
        F = soap(d["positions"], d["charges"])
        np.save(args.out, F)
        print(json.dumps({"seconds": time.perf_counter() - t, "n_features": F.shape[1]}))
        return 0
    from qmllib.kernels import get_local_kernels, get_local_symmetric_kernels

    sigmas = [float(s) for s in args.sigmas.split(",")]
    t = time.perf_counter()
    X, Q = fchl(d["positions"], d["charges"])
    t_rep = time.perf_counter() - t
    part = d["part"]  # 0 train, 1 validation, 2 test
    tr = np.flatnonzero(part == 0)
    Qtr = [Q[i] for i in tr]
    t = time.perf_counter()
    kernels = {"train": get_local_symmetric_kernels(X[tr], Qtr, sigmas)}
    for name, code in (("validation", 1), ("test", 2)):
        idx = np.flatnonzero(part == code)
        kernels[name] = get_local_kernels(X[idx], X[tr], [Q[i] for i in idx], Qtr, sigmas)
    np.savez(args.out, sigmas=np.asarray(sigmas), **kernels)
    print(json.dumps({"representation_seconds": t_rep, "kernel_seconds": time.perf_counter() - t}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
