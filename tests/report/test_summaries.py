"""From metrics.json to headlines and comparison tables, on hand-made metrics."""

import json

import numpy as np
import pytest

from wavephase.report.summaries import (
    application_of,
    summarize_classification,
    summarize_generation,
    summarize_synthesis,
)
from wavephase.report.verdict import outcome


def _entry(s, g, t, es, eg, error="|s - t| / |t|"):
    return {"synthesis": s, "gaussian": g, "truth": t, "relative_error_synthesis": es,
            "relative_error_gaussian": eg, "error": error}


def _synthesis_metrics():
    k = np.arange(1, 9, dtype=float)
    truth = np.r_[10.0 / k[:6] ** 3, 1e-15, 1e-15]  # a dealiased band beyond |k| = 6
    synth = np.r_[truth[:6] * 1.05, 1e-6, 1e-6]
    gauss = np.r_[truth[:6] * 1.2, 2e-15, 2e-15]
    return {"field": "turbulence", "size": 64, "n_samples": 2, "n_targets": 2, "n_heldout": 4, "steps_done": 10,
            "statistics": "phase-harmonics", "seconds": {"true_fields": 1.0, "synthesis": 2.0}, "loss_history": [1.0],
            "figures": [], "diverged": False,
            "metrics": {"flatness": _entry(18.9, 3.2, 15.4, 0.23, 0.79),
                        "power_spectrum": _entry(synth.tolist(), gauss.tolist(), truth.tolist(), 6.0, 0.7,
                                                 "rms of log(s / t) over wavenumbers")}}


def test_synthesis_headline_is_the_statistic_the_gaussian_model_lacks(tmp_path):
    s = summarize_synthesis(_synthesis_metrics(), tmp_path)
    (h,) = s["headlines"]
    assert h["metric"].startswith("flatness error") and (h["ours"], h["baseline"]) == (0.23, 0.79)
    (table,) = s["comparisons"]
    assert [r["truth"] for r in table["rows"]] == [15.4, None]  # a curve has no cell value
    assert [outcome(r["score_ours"], r["score_baseline"], r["better"]) for r in table["rows"]] == ["beats", "behind"]


def test_a_spectrum_lost_in_the_empty_band_is_explained_with_numbers(tmp_path):
    (note,) = summarize_synthesis(_synthesis_metrics(), tmp_path)["notes"]
    # Over the resolved band the synthesis is closer (5 % off vs 20 %); beyond it, the floor.
    assert "over the 6 wavenumbers" in note and "0.0488 for the synthesis and 0.182 for the Gaussian model" in note
    assert "the synthesis holds about" in note and "there." in note


def test_classification_pairs_each_data_set_with_its_linear_baseline(tmp_path):
    def run(dataset, model, err):
        folder = tmp_path / f"{dataset}-{model}"
        folder.mkdir()
        (folder / "confusion.json").write_text(json.dumps({"labels": [0, 1], "matrix": [[90, 10], [5, 95]]}))
        return ({"dataset": dataset, "model": model, "test_error": err, "test_accuracy": 1 - err, "train_size": 30,
                 "test_size": 200, "evaluated_on": "test set", "feature_seconds": 1.0, "fit_seconds": 1.0,
                 "seconds": 2.0}, folder)

    s = summarize_classification([run("mnist", "scattering-linear", 0.02), run("mnist", "sparse-scattering", 0.015),
                                  run("fashion-mnist", "sparse-scattering", 0.1)])
    mnist, fashion = s["headlines"]
    assert (mnist["ours"], mnist["baseline"]) == pytest.approx((1.5, 2.0))
    assert mnist["baseline_label"] == "scattering + linear" and "MNIST" in mnist["application"]
    assert fashion["baseline"] is None  # no linear run beside it
    assert s["comparisons"][0]["rows"][1]["ours"] == pytest.approx(10.0)  # worst class: 10 of 100 wrong
    assert s["notes"] == []  # no ensemble: no spread over members


def test_classification_notes_the_spread_of_the_ensemble_members(tmp_path):
    metrics = {"dataset": "mnist", "model": "sparse-scattering", "test_error": 0.0037, "test_accuracy": 0.9963,
               "train_size": 60000, "test_size": 10000, "evaluated_on": "test set", "feature_seconds": 1.0,
               "fit_seconds": 1.0, "seconds": 2.0, "random_state": 3, "member_test_errors": [0.0042, 0.0033]}
    (note,) = summarize_classification([(metrics, tmp_path)])["notes"]
    assert "2 ensemble members, trained alone from seeds 3–4" in note and "0.42, 0.33 %" in note
    assert "ensemble 0.37 %" in note


def test_generation_compares_with_both_baselines_and_the_real_images_floor(tmp_path):
    m = {"dataset": "polygons", "n_train": 1500, "fsd_samples": 35.3, "fsd_vae_baseline": 31.9,
         "fsd_gaussian_baseline": 99.3, "fsd_train_images": 9.1, "interp_nearest_train_rmse": 0.13,
         "blend_nearest_train_rmse": 0.18, "psnr_train": 19.4, "psnr_test": 18.8, "refine_lowpass_error": 0.005,
         "generator_parameters": 1, "vae_parameters": 1, "n_components": 64, "epochs": 4, "vae_epochs": 8,
         "fit_seconds": 1.0, "vae_seconds": 1.0}
    s = summarize_generation(m, tmp_path)
    (h,) = s["headlines"]
    assert outcome(h["ours"], h["baseline"], h["better"]) == "behind" and h["behind_reason"]
    assert [t["rows"][0]["truth"] for t in s["comparisons"][:2]] == [9.1, 9.1]
    assert [t["baseline_label"] for t in s["comparisons"]] == ["the VAE (8 epochs)", "the Gaussian model",
                                                             "pixel blending"]


@pytest.mark.parametrize(("metrics", "app"), [
    ({"deformation": {}, "channels": 3}, "scattering"), ({"field": "ising", "metrics": {}}, "synthesis"),
    ({"test_accuracy": 0.9, "model": "x"}, "classification"), ({"mae_kcal_mol": 1.0}, "qm9"),
    ({"fsd_samples": 1.0}, "generation"), ({"something": 1}, None),
])
def test_application_of(metrics, app):
    assert application_of(metrics) == app


def test_ising_syntheses_far_from_spins_are_said_to_hold_grey_values_or_another_balance(tmp_path):
    m = _synthesis_metrics() | {"field": "ising"}
    m["metrics"] = {"energy": _entry(-1.39, -0.66, -1.42, 0.025, 0.54),
                    "pixel_pdf": _entry([0.5], [0.5], [0.5], 0.29, 0.77, "total variation distance")}
    s = summarize_synthesis(m, tmp_path)
    assert s["headlines"][0]["metric"].startswith("energy per spin error")
    (note,) = s["notes"]
    assert "total variation of 0.29" in note and "grey values" in note and "targets' own" not in note
    # from one target: the target's own distance, which its syntheses inherit, is given beside it
    m["metrics"]["pixel_pdf"]["relative_error_targets"] = 0.13
    (note,) = [n for n in summarize_synthesis(m, tmp_path)["notes"] if n.startswith("Pixel PDF")]
    assert "another balance of +1 and −1 (the targets' own: 0.13)" in note
    assert "bins centred at ±1" not in note
    # the spin-value histogram separates grey values from another balance
    m["metrics"]["spin_histogram"] = _entry([0.5], [0.5], [0.5], 0.04, 0.76, "total variation distance") | {
        "relative_error_targets": 0.12}
    (note,) = [n for n in summarize_synthesis(m, tmp_path)["notes"] if n.startswith("Pixel PDF")]
    assert "On bins centred at ±1" in note and "the distance is 0.04 (the targets' own: 0.12)." in note
    m["metrics"]["pixel_pdf"]["relative_error_synthesis"] = 0.05
    assert not any(n.startswith("Pixel PDF") for n in summarize_synthesis(m, tmp_path)["notes"])


def test_a_cascade_behind_the_linear_model_says_by_how_many_images(tmp_path):
    def run(model, err):
        folder = tmp_path / f"{model}-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        return ({"dataset": "mnist", "model": model, "test_error": err, "test_accuracy": 1 - err, "train_size": 3000,
                 "test_size": 10000, "evaluated_on": "test set", "feature_seconds": 1.0, "fit_seconds": 1.0,
                 "seconds": 2.0}, folder)

    (h,) = summarize_classification([run("scattering-linear", 0.0165), run("sparse-scattering", 0.0166)])["headlines"]
    assert outcome(h["ours"], h["baseline"], h["better"]) == "behind"
    # one image apart, against sqrt(0.0165 * 0.9835 * 10000) = 12.7 images of noise
    assert h["behind_reason"].startswith("the two differ by 1 of 10000 test images, within the ±13-image")
    (h,) = summarize_classification([run("scattering-linear", 0.0165), run("sparse-scattering", 0.03)])["headlines"]
    assert "differ by 135 of 10000 test images, beyond" in h["behind_reason"]


def test_qm9_summary_lists_the_worst_molecules_and_their_figure(tmp_path):
    from wavephase.report.summaries import summarize_qm9

    worst = {"molecules": [{"qm9_index": 7, "formula": "C2F6", "error_kcal_mol": -660.0, "n_invariants_out_of_range": 12,
                            "nearest_train_qm9_index": 9, "nearest_train_formula": "CF4", "nearest_distance": 40.0}],
             "share_of_squared_error": 0.6, "median_nearest_distance_random_test": 3.0}
    (tmp_path / "worst_molecules.png").write_bytes(b"png")
    m = {"mae_kcal_mol": 0.8, "rmse_kcal_mol": 4.0, "train_size": 100, "n_test": 20, "worst_test_molecules": worst}
    s = summarize_qm9(m, tmp_path, None)
    line = s["details"]["Worst test molecules"]["C2F6 (QM9 #7)"]
    assert "-660.0 kcal/mol" in line and "CF4 (#9" in line and "12 invariants" in line
    assert "60 % of the squared error" in s["notes"][0]
    assert list(s["figures"].values()) == [tmp_path / "worst_molecules.png"]


def test_generation_reports_the_sample_scores_against_both_baselines(tmp_path):
    m = {"dataset": "mnist", "n_train": 40000, "fsd_samples": 60.0, "fsd_vae_baseline": 110.0,
         "fsd_gaussian_baseline": 300.0, "fsd_train_images": 30.0, "interp_nearest_train_rmse": 0.15,
         "blend_nearest_train_rmse": 0.16, "psnr_train": 25.0, "psnr_test": 24.2, "refine_lowpass_error": 0.007,
         "generator_parameters": 1, "vae_parameters": 1, "n_components": 256, "epochs": 8, "vae_epochs": 12,
         "fit_seconds": 1.0, "vae_seconds": 1.0, "sample_score_name": "confident", "sample_score": 0.7,
         "sample_score_vae": 0.6, "sample_score_gaussian": 0.0, "sample_score_train": 0.95,
         "sample_class_entropy_bits": 3.2, "sample_class_entropy_bits_vae": 3.1,
         "sample_class_entropy_bits_train": 3.3}
    s = summarize_generation(m, tmp_path)
    vae, gauss = s["comparisons"][:2]
    assert [r["metric"] for r in vae["rows"]][1:] == ["confident", vae["rows"][2]["metric"]]
    assert "entropy" in vae["rows"][2]["metric"]
    assert (vae["rows"][1]["ours"], vae["rows"][1]["baseline"], vae["rows"][1]["truth"]) == (0.7, 0.6, 0.95)
    assert outcome(vae["rows"][1]["score_ours"], vae["rows"][1]["score_baseline"], vae["rows"][1]["better"]) == "beats"
    assert gauss["rows"][1]["baseline"] == 0.0 and len(gauss["rows"]) == 2


def test_the_spread_of_true_fields_and_the_targets_own_errors_are_noted(tmp_path):
    m = _synthesis_metrics() | {"n_true": 3}
    m["metrics"]["flatness"] |= {"relative_error_true_fields": 0.12, "relative_error_targets": 0.46}
    notes = summarize_synthesis(m, tmp_path)["notes"]
    spread = [n for n in notes if n.startswith("Spread of true fields: 3 other true fields")]
    own = [n for n in notes if n.startswith("The 2 target field(s) scored the same way")]
    assert len(spread) == 1 and spread[0].endswith(" 0.12.")
    assert len(own) == 1 and own[0].endswith(" 0.46.")
    assert not any("power spectrum 0" in n for n in spread + own)  # only statistics that carry the key
