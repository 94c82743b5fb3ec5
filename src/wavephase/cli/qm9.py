"""``wavephase qm9``: QM9 atomization energies from 3D wavelet invariants."""

from __future__ import annotations

import argparse

from wavephase.cli._options import (
    add_command,
    add_count,
    add_device,
    add_out,
    add_progress,
    add_seed,
    add_workers,
    api_kwargs,
)

__all__ = ["register", "API", "PRESETS"]

#: The names of ``wavephase.models.molecule_features.QM9_PRESETS`` (kept here so that the CLI
#: starts without importing the 3D transforms).
PRESETS = ("fast", "cpu", "full", "spectrum", "scattering")

#: Each flag's keyword of :func:`~wavephase.experiments.qm9.run_qm9`.
API: dict[str, str] = {
    "train_size": "train_size", "limit": "limit", "scheduler": "scheduler", "workers": "n_workers",
    "chunk_size": "chunk_size", "feature_map": "feature_map", "preset": "preset", "device": "device",
    "batch_size": "batch_size", "progress": "progress", "seed": "random_state",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``qm9`` sub-command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``wavephase`` sub-command registry.
    """
    p = add_command(subparsers, "qm9", "fit QM9 energies on 3D wavelet invariants", _run,
                    description="Fits atomization energies on solid-harmonic wavelet invariants (scattering and "
                                "atom-centred spectra), kept in a verified feature store in the wavephase cache; "
                                "writes the test MAE/RMSE, a parity plot, a learning curve, a forces check and "
                                "metrics.json. The fit is deterministic; --seed 0 is the fixed split, another "
                                "seed divides the same molecules again into sets of the same sizes.",
                    uses_cache=True)
    add_count(p, "--train-size", "training molecules (default: all 110,000, or 70%% of --limit)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only N molecules: 70%% train, 10%% validation, 20%% test (quick runs; default: all)")
    p.add_argument("--scheduler", default=None,
                   help="'serial' (this process) or a Dask scheduler address tcp://HOST:PORT (default: a local "
                        "Dask cluster of --workers processes, or this process for one worker)")
    add_workers(p, "local Dask worker processes (default: 2 when Dask is installed, else 1: this process); more "
                   "than one needs pip install 'wavephase[distributed]'", default=None)
    p.add_argument("--chunk-size", type=int, default=50, metavar="N", help="molecules per feature task")
    p.add_argument("--feature-map", choices=("linear", "linear+sqrt", "quadratic"), default="linear",
                   help="the invariants alone, with their square roots, or with those and the pairwise "
                        "products of their 64 leading principal components (quadratic; for small presets: the "
                        "expansion doubles the columns)")
    p.add_argument("--preset", choices=PRESETS, default="fast",
                   help="invariants: fast (the atom-centred wavelet spectra plus a first-order "
                        "solid-harmonic scattering, ~7 ms per molecule on one core), cpu (spectra plus the "
                        "scattering on a coarse grid, ~25 ms), full (spectra plus the scattering at the module "
                        "defaults, ~80 ms), spectrum (spectra alone) or scattering (the cpu scattering alone)")
    add_seed(p, "the split: 0 is the fixed split, another seed re-divides the same molecules")
    add_device(p, "the feature transform (with cuda, best with --scheduler serial)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="molecules the transform processes together (default: 16; hundreds suit a GPU)")
    add_progress(p)
    add_out(p)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.qm9 import run_qm9

    m = run_qm9(args.out, **api_kwargs(args, API))
    print(f"QM9 train_size={m['train_size']} n_test={m['n_test']}: MAE {m['mae_kcal_mol']:.2f} kcal/mol, "
          f"RMSE {m['rmse_kcal_mol']:.2f} kcal/mol; features {m['feature_seconds_per_molecule'] * 1e3:.1f} "
          f"ms/molecule; results in {args.out}")
    return 0
