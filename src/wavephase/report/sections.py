"""The sections of ``wavephase report``, one per application of the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wavephase.report.section import Section

__all__ = ["SECTIONS"]


def _scattering(out: Path, quick: bool) -> dict[str, Any]:
    from wavephase.experiments.scattering_demo import run_scattering_demo

    size = 128 if quick else 256
    m = run_scattering_demo(out, image="grace_hopper", size=size, J=4, L=8)
    d = m["deformation"]
    return {
        "settings": {"image": m["image"], "size": size, "J": 4, "L": 8},
        "table": {
            "output channels": m["channels"],
            "filter-bank build (s)": m["build_seconds"],
            "forward, one image (s)": m["forward_seconds"],
            "Littlewood-Paley min": m["littlewood_paley_min"],
            "Littlewood-Paley max": m["littlewood_paley_max"],
            **{f"deformation ratio at ‖∇τ‖={g:g}: scattering": s for g, s in zip(d["max_gradient"], d["scattering"])},
            **{f"deformation ratio at ‖∇τ‖={g:g}: Fourier modulus": f
               for g, f in zip(d["max_gradient"], d["fourier modulus"])},
        },
        "figures": {"Morlet wavelets": out / m["figures"]["wavelets"],
                    "first-order scattering of a photograph": out / m["figures"]["coefficients"],
                    "deformation stability: scattering vs Fourier modulus": out / m["figures"]["deformation"]},
    }


def _field_section(field: str, out: Path, quick: bool, full_size: int) -> dict[str, Any]:
    from wavephase.experiments.synthesis import run_synthesis

    # Quick mode keeps the simulations short: four held-out fields are enough to show the contrast.
    sizes: dict[str, Any] = {"n_heldout": 4} if quick else {"size": full_size, "n_samples": 4, "steps": 1000}
    m = run_synthesis(field, out, progress=True, **sizes)
    table: dict[str, Any] = {}
    for name, row in m["metrics"].items():
        if not isinstance(row, dict) or not isinstance(row.get("truth"), (int, float)):
            continue  # vector metrics are in the figures; their errors below
        table[f"{name}: held-out truth"] = row["truth"]
        table[f"{name}: phase-harmonic synthesis"] = row["synthesis"]
        if row.get("gaussian") is not None:
            table[f"{name}: Gaussian model"] = row["gaussian"]
    for name, row in m["metrics"].items():
        if isinstance(row, dict) and "relative_error_synthesis" in row and not isinstance(row.get("truth"), (int, float)):
            table[f"{name} error ({row.get('error', 'relative')}): synthesis"] = row["relative_error_synthesis"]
            if row.get("relative_error_gaussian") is not None:
                table[f"{name} error ({row.get('error', 'relative')}): Gaussian model"] = row["relative_error_gaussian"]
    table["true fields wall time (s)"] = m["seconds"]["true_fields"]
    table["synthesis wall time (s)"] = m["seconds"]["synthesis"]
    captions = {"fields.png": "target | phase-harmonic synthesis | Gaussian model",
                "spectra.png": "isotropic power spectra", "pdf.png": "pixel PDFs"}
    figures = {captions.get(name, name): out / name for name in m["figures"]}
    settings = {k: m[k] for k in ("field", "size", "n_samples", "n_heldout", "steps", "steps_done", "statistics")}
    return {"settings": settings, "table": table, "figures": figures}


def _ising(out: Path, quick: bool) -> dict[str, Any]:
    return _field_section("ising", out, quick, 128)


def _turbulence(out: Path, quick: bool) -> dict[str, Any]:
    return _field_section("turbulence", out, quick, 256)


def _qm9(out: Path, quick: bool) -> dict[str, Any]:
    from wavephase.experiments.qm9 import run_qm9

    # The quick report keeps the spectra and a first-order scattering: seconds, not minutes.
    sizes: dict[str, Any] = {"limit": 3000, "preset": "fast"} if quick else {}
    m = run_qm9(out, progress=True, **sizes)
    table: dict[str, Any] = {
        "test MAE (kcal/mol)": m["mae_kcal_mol"], "test RMSE (kcal/mol)": m["rmse_kcal_mol"],
        "training molecules": m["train_size"], "test molecules": m["n_test"],
        "feature seconds per molecule (one worker)": m["feature_seconds_per_molecule"],
    }
    for row in m.get("learning_curve", []):
        if isinstance(row, dict) and "train_size" in row and "mae_kcal_mol" in row:
            table[f"learning curve: MAE at {row['train_size']} training molecules"] = row["mae_kcal_mol"]
    for key, value in (m.get("forces") or {}).items():
        if isinstance(value, (int, float, str)):
            table[f"forces on one test molecule: {key}"] = value
    figures = {caption: out / name for caption, name in
               (("parity plot, test set", "parity.png"), ("learning curve", "learning_curve.png"))
               if (out / name).is_file()}
    return {"settings": {"limit": sizes.get("limit", "all 130,831")}, "table": table, "figures": figures}


def _classification(out: Path, quick: bool) -> dict[str, Any]:
    from wavephase.experiments.classification import run_classification

    sizes = dict(train_size=3000, test_size=1000, cache_features=False) if quick else {}
    epochs = 4 if quick else 30
    table: dict[str, Any] = {}
    figures: dict[str, Path] = {}
    for dataset in ("mnist", "fashion-mnist"):
        for model in ("scattering-linear", "sparse-scattering"):
            m = run_classification(dataset, model, out / f"{dataset}-{model}", epochs=epochs, progress=True, **sizes)
            table[f"{dataset} {model}: test accuracy (%)"] = 100 * m["test_accuracy"]
            table[f"{dataset} {model}: wall time (s)"] = m["seconds"]
            figures[f"{dataset}, {model}: confusion matrix"] = out / f"{dataset}-{model}" / "confusion.png"
        table[f"{dataset}: training / test images"] = f"{m['train_size']} / {m['test_size']}"
    return {"settings": {"J": 3, "L": 8, "sparse epochs": epochs, **sizes}, "table": table, "figures": figures}


def _generation(out: Path, quick: bool) -> dict[str, Any]:
    from wavephase.experiments.generation import run_generation

    sizes = (dict(train_size=1500, test_size=300, epochs=4, n_components=64, n_fsd=300) if quick
             else dict(train_size=20000, test_size=2000, epochs=15, n_components=256, n_fsd=2000))
    m = run_generation("polygons", out, progress=False, **sizes)
    keys = ["psnr_train", "psnr_test", "psnr_gap", "fsd_samples", "fsd_gaussian_baseline", "fsd_vae_baseline",
            "fsd_train_images", "refine_lowpass_error", "generator_parameters", "vae_parameters", "fit_seconds"]
    figures = {p.stem.replace("_", " "): p for p in sorted(out.glob("*.png"))}
    return {"settings": {"dataset": "polygons", **sizes}, "table": {k: m[k] for k in keys if k in m},
            "figures": figures}


SECTIONS: list[Section] = [
    Section("scattering", "Wavelets and scattering of a real image", _scattering),
    Section("ising", "Ising at the critical temperature: phase-harmonic maximum-entropy model vs Gaussian model",
            _ising),
    Section("turbulence", "2D turbulence: phase-harmonic maximum-entropy model vs Gaussian model", _turbulence),
    Section("classification", "MNIST and Fashion-MNIST: scattering + linear vs scattering → sparse code → linear",
            _classification),
    Section("qm9", "QM9: atomization energies from solid-harmonic wavelet invariants and a linear model", _qm9),
    Section("generation", "Generative scattering networks: reconstruction, interpolation, sampling, refinement",
            _generation),
]
