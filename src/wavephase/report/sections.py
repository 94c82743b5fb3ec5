"""The sections of ``wavephase report``, one per application, with their quick and full settings.

Quick settings are chosen so that the whole quick report takes at most 10 minutes
on 2 CPU cores and each section's headline beats its baseline where that is
possible at such sizes (the page says why where it is not). Each section's
``expected_seconds`` are wall times on 2 shared CPU cores with nothing cached:
quick ones measured with ``wavephase report --quick --only KEY``, full ones
estimated from the runs that set the full sizes (see each section).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wavephase.report.section import Section

__all__ = ["SECTIONS"]


def _scattering(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    from wavephase.experiments.scattering_demo import run_scattering_demo
    from wavephase.report.summaries import summarize_scattering

    return summarize_scattering(run_scattering_demo(out, **s), out)


def _synthesis(field: str, out: Path, s: dict[str, Any]) -> dict[str, Any]:
    from wavephase.experiments.synthesis import run_synthesis
    from wavephase.report.summaries import summarize_synthesis

    return summarize_synthesis(run_synthesis(field, out, progress=True, **s), out)


def _ising(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    return _synthesis("ising", out, s)


def _turbulence(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    return _synthesis("turbulence", out, s)


def _classification(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    from wavephase.experiments.classification import run_classification
    from wavephase.report.summaries import summarize_classification

    runs = []
    for dataset, models in s["runs"].items():
        for model, params in models.items():
            folder = out / f"{dataset}-{model}"
            runs.append((run_classification(dataset, model, folder, progress=True, **s["common"], **params), folder))
    return summarize_classification(runs)


def _qm9(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    from wavephase.experiments.qm9 import run_qm9
    from wavephase.report.baselines import dressed_atom_errors
    from wavephase.report.summaries import summarize_qm9

    m = run_qm9(out, progress=True, **s)
    return summarize_qm9(m, out, dressed_atom_errors(m))


def _generation(out: Path, s: dict[str, Any]) -> dict[str, Any]:
    from wavephase.experiments.generation import run_generation
    from wavephase.report.summaries import summarize_generation

    s = dict(s)
    return summarize_generation(run_generation(s.pop("dataset"), out, progress=False, **s), out)


# Quick classification: 3,000 training images and the whole test set (10,000 images, so a
# difference of 0.1 % is 10 images). The sparse cascade gets a larger learning rate than
# its default, which at 8 epochs is what lets it overtake the linear model at this size.
_SPARSE_QUICK = {"epochs": 8, "model_params": {"lr": 5e-3}}
_CLASSIFICATION_QUICK = {
    "common": {"train_size": 3000, "cache_features": False},
    "runs": {"mnist": {"scattering-linear": {}, "sparse-scattering": _SPARSE_QUICK},
             "fashion-mnist": {"scattering-linear": {}, "sparse-scattering": _SPARSE_QUICK}},
}
# Full: the whole training and test sets; the sparse cascade as in the README's Fashion-MNIST recipe.
_CLASSIFICATION_FULL = {
    "common": {},
    "runs": {"mnist": {"scattering-linear": {}, "sparse-scattering": {"epochs": 30}},
             "fashion-mnist": {"scattering-linear": {},
                               "sparse-scattering": {"epochs": 40, "augment": 2, "test_flip": True}}},
}

SECTIONS: list[Section] = [
    Section("scattering", "Wavelets and scattering of a real image", _scattering,
            quick={"image": "grace_hopper", "size": 128, "J": 4, "L": 8},
            full={"image": "grace_hopper", "size": 256, "J": 4, "L": 8},
            expected_seconds=(20, 60)),
    Section("ising", "Ising at the critical temperature: phase-harmonic maximum-entropy model vs Gaussian model",
            _ising,
            quick={"size": 64, "n_samples": 4, "steps": 200, "n_heldout": 64},
            # the README's Ising recipe (128², 1024 targets and held-out fields, 500 steps)
            full={"size": 128, "n_samples": 8, "n_targets": 1024, "n_heldout": 1024, "steps": 500},
            expected_seconds=(30, 1500)),
    Section("turbulence", "2D turbulence: phase-harmonic maximum-entropy model vs Gaussian model", _turbulence,
            quick={"size": 128, "n_samples": 2, "steps": 150, "n_heldout": 4},
            # the README's turbulence recipe (256², 16 targets and held-out fields, 150 steps)
            full={"size": 256, "n_samples": 2, "n_targets": 16, "n_heldout": 16, "steps": 150},
            expected_seconds=(80, 1200)),
    Section("classification", "MNIST and Fashion-MNIST: scattering + linear vs scattering → sparse code → linear",
            _classification, quick=_CLASSIFICATION_QUICK, full=_CLASSIFICATION_FULL,
            expected_seconds=(150, 5400)),
    Section("qm9", "QM9: atomization energies from solid-harmonic wavelet invariants and a linear model", _qm9,
            quick={"limit": 3000, "preset": "fast"},
            # the README's 2-core QM9 run: features of all 130,831 molecules in 6.8 min
            full={"preset": "fast"},
            expected_seconds=(80, 900)),
    Section("generation", "Generative scattering networks: reconstruction, interpolation, sampling, refinement",
            _generation,
            quick={"dataset": "polygons", "train_size": 1500, "test_size": 300, "epochs": 4, "n_components": 64,
                   "n_fsd": 300},
            full={"dataset": "polygons", "train_size": 20000, "test_size": 2000, "epochs": 15, "n_components": 256,
                  "n_fsd": 2000},
            expected_seconds=(95, 3600)),
]
