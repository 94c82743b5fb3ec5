"""The report's sections: settings every driver accepts, documented times, one folder each."""

import inspect
import math

import pytest

from wavephase.experiments.classification import run_classification
from wavephase.experiments.generation import run_generation
from wavephase.experiments.qm9 import run_qm9
from wavephase.experiments.scattering_demo import run_scattering_demo
from wavephase.experiments.synthesis import run_synthesis
from wavephase.report.sections import SECTIONS


def _calls(key, settings):
    """The driver calls a section makes with its settings, as (function, positional, keyword) triples."""
    if key == "scattering":
        return [(run_scattering_demo, ("out",), settings)]
    if key in ("ising", "turbulence"):
        return [(run_synthesis, (key, "out"), {**settings, "progress": True})]
    if key == "classification":
        return [(run_classification, (dataset, model, "out"), {**settings["common"], **params, "progress": True})
                for dataset, models in settings["runs"].items() for model, params in models.items()]
    if key == "qm9":
        return [(run_qm9, ("out",), {**settings, "progress": True})]
    return [(run_generation, (dataset, "out"), {**params, "progress": False})
            for dataset, params in settings["runs"].items()]


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
@pytest.mark.parametrize("section", SECTIONS, ids=[s.key for s in SECTIONS])
def test_settings_are_arguments_of_the_drivers(section, quick):
    # The drivers' signatures may change (one CLI grammar): a renamed argument fails here, not in `make demo`.
    for fn, args, kwargs in _calls(section.key, section.settings(quick)):
        inspect.signature(fn).bind(*args, **kwargs)


def test_every_section_documents_its_times_and_the_quick_report_fits_in_ten_minutes():
    assert len({s.key for s in SECTIONS}) == len(SECTIONS)
    for s in SECTIONS:
        quick, full = s.expected_seconds
        assert math.isfinite(quick) and math.isfinite(full) and 0 < quick < full, s.key
    # the documented quick times leave a margin for a busier machine
    assert sum(s.expected_seconds[0] for s in SECTIONS) <= 0.8 * 600


def test_settings_are_copies():
    section = SECTIONS[0]
    section.settings(True)["size"] = -1
    assert section.settings(True)["size"] > 0


def test_generation_section_with_two_data_sets_names_each_table_after_its_data_set(tmp_path, monkeypatch):
    import wavephase.experiments.generation as generation
    from wavephase.report.sections import _generation

    def fake(dataset, out, **kwargs):
        return {"dataset": dataset, "n_train": 5000, "fsd_samples": 50.0, "fsd_vae_baseline": 60.0,
                "fsd_gaussian_baseline": 300.0, "fsd_train_images": 20.0, "interp_nearest_train_rmse": 0.1,
                "blend_nearest_train_rmse": 0.2, "psnr_train": 25.0, "psnr_test": 24.0, "refine_lowpass_error": 0.01,
                "generator_parameters": 1, "vae_parameters": 1, "n_components": 256, "epochs": 8, "vae_epochs": 12,
                "fit_seconds": 1.0, "vae_seconds": 1.0}

    monkeypatch.setattr(generation, "run_generation", fake)
    full = next(s for s in SECTIONS if s.key == "generation").settings(False)
    summary = _generation(tmp_path, full)
    assert [h["application"].split(" (")[0] for h in summary["headlines"]] == ["Generation of polygons",
                                                                              "Generation of Fashion-MNIST"]
    titles = [c["title"] for c in summary["comparisons"]]
    assert titles[0] == "polygons: Samples against the VAE" and titles[3] == "fashion-mnist: Samples against the VAE"
    assert set(summary["details"]) == {"polygons: Reconstruction and training",
                                       "fashion-mnist: Reconstruction and training"}
