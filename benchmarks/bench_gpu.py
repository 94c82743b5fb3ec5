"""Benchmark: the operators on a CUDA GPU against the CPU of the same machine, side by side.

Times, on ``cuda`` and on the CPU (``--threads`` threads) in one run:

* ``Scattering2D`` forward on the issue's three cases (a) J=2 L=8 256x28²,
  (b) J=3 L=8 64x32², (c) J=4 L=8 8x256², and forward+backward on (a);
* ``PhaseHarmonicStatistics`` (256², J=6, L=8, dn=2) forward+backward;
* ``SolidHarmonicScattering3D()`` (the defaults) on real QM9 molecules when the
  QM9 cache is present, else skipped.

GPU times are taken after warm-up with ``torch.cuda.synchronize()``; each figure
is the best of ``--repeats``. Prints a table with the GPU/CPU speed-up.

Usage: python benchmarks/bench_gpu.py [--threads 16] [--repeats 5] [--molecules 512] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import torch

from wavephase import PhaseHarmonicStatistics, Scattering2D, SolidHarmonicScattering3D


def best_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs after one warm-up, synchronising the GPU."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def workloads(n_molecules: int) -> dict[str, Callable[[torch.device], tuple[Callable[[], object], int]]]:
    """Name -> builder of (closure, items per call) on a device."""

    def scattering(J: int, n: int, side: int, backward: bool = False):
        def build(dev: torch.device):
            S = Scattering2D(J, (side, side), L=8).to(dev)
            x = torch.randn(n, side, side, device=dev, requires_grad=backward)
            if backward:
                return (lambda: torch.autograd.grad(S(x).sum(), x)), n
            return (lambda: S(x)), n
        return build

    def statistics(dev: torch.device):
        x = torch.randn(256, 256, device=dev).cumsum(0)
        stats = PhaseHarmonicStatistics((256, 256), J=6, L=8, dn=2).to(dev).set_reference(x)
        y = x.clone().requires_grad_()
        return (lambda: torch.autograd.grad(stats.loss(y[None]), y)), 1

    def molecules(dev: torch.device):
        from wavephase.data.qm9 import load_qm9

        data = load_qm9(download=False)
        pos = torch.as_tensor(data["positions"][:n_molecules], device=dev)
        z = torch.as_tensor(data["charges"][:n_molecules], device=dev, dtype=torch.float32)
        S = SolidHarmonicScattering3D(chunk_size=256 if dev.type == "cuda" else 64).to(dev)
        return (lambda: S(pos, z)), n_molecules

    return {
        "(a) Scattering2D J=2 256x28² forward": scattering(2, 256, 28),
        "(a) Scattering2D J=2 256x28² forward+backward": scattering(2, 256, 28, backward=True),
        "(b) Scattering2D J=3 64x32² forward": scattering(3, 64, 32),
        "(c) Scattering2D J=4 8x256² forward": scattering(4, 8, 256),
        "PhaseHarmonicStatistics 256² J=6 fwd+bwd": statistics,
        "SolidHarmonicScattering3D() QM9 molecules": molecules,
    }


def main() -> None:
    """Time every workload on cuda and on the CPU and print the speed-ups."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--molecules", type=int, default=512)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible to torch; this benchmark needs one")
    torch.set_num_threads(args.threads)
    print(f"GPU {torch.cuda.get_device_name()}, CPU {args.threads} threads, torch {torch.__version__}")
    print("| workload | GPU items/s | CPU items/s | GPU / CPU |")
    print("|---|---|---|---|")
    rows = []
    for name, build in workloads(args.molecules).items():
        rates = {}
        for dev in (torch.device("cuda"), torch.device("cpu")):
            try:
                fn, items = build(dev)
            except FileNotFoundError as err:
                print(f"| {name} | skipped: {err} | | |")
                break
            rates[dev.type] = items / best_time(fn, dev, args.repeats if dev.type == "cuda" else 2)
        if len(rates) == 2:
            rows.append({"workload": name, "gpu_per_s": rates["cuda"], "cpu_per_s": rates["cpu"]})
            print(f"| {name} | {rates['cuda']:.1f} | {rates['cpu']:.1f} | {rates['cuda'] / rates['cpu']:.1f}x |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "threads": args.threads, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
