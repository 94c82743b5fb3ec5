"""``wavephase qm9``: QM9 atomization energies from 3D wavelet invariants."""

from __future__ import annotations

import argparse

__all__ = ["register", "PRESETS"]

#: The names of ``wavephase.models.molecule_features.QM9_PRESETS`` (kept here so that the CLI
#: starts without importing torch).
PRESETS = ("fast", "cpu", "full", "spectrum", "scattering")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``qm9`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``wavephase`` sub-command registry.
    """
    p = subparsers.add_parser("qm9", help="fit QM9 atomization energies on solid-harmonic wavelet "
                                          "invariants (scattering and atom-centred spectra); write test MAE/RMSE, "
                                          "parity plot, learning curve, forces check and metrics.json",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train-size", type=int, default=None,
                   help="training molecules; None: all 110,000, or 70%% of --limit")
    p.add_argument("--limit", type=int, default=None,
                   help="use only N molecules: 70%% train, 10%% validation, 20%% test (quick runs)")
    p.add_argument("--scheduler", default=None,
                   help="'serial' (this process) or a Dask scheduler address tcp://HOST:PORT; None: a local "
                        "Dask cluster of --workers processes, or this process for one worker")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes; None: 2 when Dask is installed, else 1 (this process); more "
                        "than one needs pip install 'wavephase[distributed]'")
    p.add_argument("--chunk-size", type=int, default=50, help="molecules per feature task")
    p.add_argument("--feature-map", choices=("linear", "linear+sqrt", "quadratic"), default="linear",
                   help="the invariants alone, with their square roots, or with those and the pairwise "
                        "products of their 64 leading principal components (quadratic; for small presets: the "
                        "expansion doubles the columns)")
    p.add_argument("--preset", choices=PRESETS, default="fast",
                   help="invariants: fast (the atom-centred wavelet spectra plus a first-order "
                        "solid-harmonic scattering, ~7 ms per molecule on one core), cpu (spectra plus the "
                        "scattering on a coarse grid, ~25 ms), full (spectra plus the scattering at the module "
                        "defaults, ~80 ms), spectrum (spectra alone) or scattering (the cpu scattering alone)")
    p.add_argument("--device", default="cpu",
                   help="torch device of the feature transform, e.g. cuda (best with --scheduler serial)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="molecules the transform processes together; None: 16 (hundreds suit a GPU)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.qm9 import run_qm9

    m = run_qm9(args.out, train_size=args.train_size, limit=args.limit, scheduler=args.scheduler,
                n_workers=args.workers, progress=args.progress, preset=args.preset, feature_map=args.feature_map,
                chunk_size=args.chunk_size, device=args.device, batch_size=args.batch_size)
    print(f"QM9 train_size={m['train_size']} n_test={m['n_test']}: MAE {m['mae_kcal_mol']:.2f} kcal/mol, "
          f"RMSE {m['rmse_kcal_mol']:.2f} kcal/mol; features {m['feature_seconds_per_molecule'] * 1e3:.1f} "
          f"ms/molecule; results in {args.out}")
    return 0
