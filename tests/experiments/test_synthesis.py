"""The synthesis experiment: fields, syntheses, metrics.json; arguments checked before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wavephase.experiments import synthesis as experiment
from wavephase.experiments.synthesis import default_statistics_options, load_fields, run_synthesis
from wavephase.metrics import spin_histogram

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _png(path, size: int = 48):
    g = torch.Generator().manual_seed(0)
    k = torch.fft.fftfreq(size)
    smooth = torch.fft.ifft2(torch.fft.fft2(torch.randn(size, size, generator=g))
                             * torch.exp(-((k[:, None] ** 2 + k[None] ** 2) / 0.02))).real
    img = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).numpy().astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def test_run_synthesis_ising_with_more_targets_than_samples(tmp_path):
    m = run_synthesis("ising", tmp_path, size=16, n_samples=2, n_targets=6, n_heldout=4, steps=3, progress=False)
    assert (m["n_samples"], m["n_targets"], m["n_heldout"], m["match"]) == (2, 6, 4, "sign")
    assert m["statistics_options"] == {"quantiles": 64, "quantile_weight": 3.0}
    written = json.loads((tmp_path / "metrics.json").read_text())
    energy = written["metrics"]["energy"]
    assert energy["truth_se"] > 0 and energy["synthesis_se"] >= 0 and energy["gaussian_se"] >= 0
    assert written["run"]["torch"] == torch.__version__ and written["random_state"] == 0
    assert "±" in (tmp_path / "metrics.txt").read_text()
    # issue 22's discriminating score, for the syntheses and the Gaussian model (16x16 fields: 8x8 crops)
    disc = written["metrics"]["discrimination"]
    assert 0 <= written["discrimination_accuracy"] <= 1 and 0 <= written["discrimination_accuracy_gaussian"] <= 1
    assert disc["synthesis"] == written["discrimination_accuracy"] and disc["crop"] == 8 and disc["truth"] == 0.5
    assert disc["relative_error_synthesis"] == pytest.approx(abs(disc["synthesis"] - 0.5))


def test_run_synthesis_on_an_image_resumes_from_its_checkpoint(tmp_path):
    png = _png(tmp_path / "texture.png")
    out = tmp_path / "out"
    m = run_synthesis(str(png), out, size=32, n_samples=2, steps=4, progress=False)
    assert m["steps_done"] == 4 and not m["resumed"] and m["n_heldout"] == 1
    assert m["discrimination_accuracy"] is None and "discrimination" not in m["metrics"]  # one true field
    again = run_synthesis(str(png), out, size=32, n_samples=2, steps=4, progress=False)
    assert again["resumed"] and again["metrics"] == m["metrics"]


def test_load_fields_of_each_kind(tmp_path):
    spins = load_fields("ising", 8, 3, random_state=1, progress=False)
    assert spins.shape == (3, 8, 8) and set(spins.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(spins, load_fields("ising", 8, 3, random_state=1, progress=False))
    image = load_fields(str(_png(tmp_path / "a.png")), 16, 5)
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32


def test_turbulence_sets_simulated_side_by_side_are_those_drawn_one_by_one(monkeypatch):
    # Each set has its own seed, and the thread count changes no value: running them in two workers,
    # the last one on both cores once the other has ended, changes no value.
    monkeypatch.setattr(experiment, "usable_cores", lambda: 2)
    side_by_side = experiment._true_field_sets("turbulence", "turbulence", 32, [1, 2], 3, False,
                                                  torch.device("cpu"))
    one_by_one = [load_fields("turbulence", 32, n, seed, progress=False) for n, seed in ((1, 3), (2, 4))]
    assert [f.shape for f in side_by_side] == [(1, 32, 32), (2, 32, 32)]
    assert all(torch.equal(a, b) for a, b in zip(side_by_side, one_by_one))


@pytest.mark.parametrize("field, kwargs, match", [
    ("clouds", {}, "neither"),
    ("missing.png", {}, "existing"),
    ("ising", {"size": 4}, "size"),
    ("ising", {"statistics": "wavelets"}, "statistics"),
    ("ising", {"n_samples": 0}, "n_samples"),
    ("ising", {"threads": 0}, "threads"),
    ("ising", {"random_state": -3}, "random_state"),
    ("ising", {"device": "tpu"}, "device"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, monkeypatch, field, kwargs, match):
    def no_simulation(*args, **kw):
        raise AssertionError("a simulation started before the arguments were checked")

    monkeypatch.setattr(experiment, "ising", no_simulation)
    with pytest.raises(ValueError, match=match):
        run_synthesis(field, tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_an_unusable_output_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "ising", lambda *a, **k: pytest.fail("simulated before checking --out"))
    existing_file = tmp_path / "file"
    existing_file.write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        run_synthesis("ising", existing_file, progress=False)


def test_one_target_prints_the_spread_of_as_many_true_fields(tmp_path):
    m = run_synthesis("ising", tmp_path, size=16, n_samples=2, n_targets=1, n_heldout=4, steps=3, progress=False)
    assert (m["n_targets"], m["n_true"]) == (1, 2)
    # the histogram family only helps averaged moments; one target's own low wavenumbers slow L-BFGS
    assert m["statistics_options"] == {"low": False}
    for name in ("energy", "abs_magnetisation", "pixel_pdf", "spin_histogram"):
        assert m["metrics"][name]["relative_error_true_fields"] >= 0
        assert m["metrics"][name]["relative_error_targets"] >= 0
    # the syntheses themselves are kept (a plain .npy), and they are what was scored
    fields = np.load(tmp_path / "syntheses.npy", allow_pickle=False)
    assert fields.shape == (2, 16, 16)
    np.testing.assert_allclose(spin_histogram(fields), m["metrics"]["spin_histogram"]["synthesis"])
    text = (tmp_path / "metrics.txt").read_text()
    assert "true err" in text and "target err" in text
    none = run_synthesis("ising", tmp_path / "b", size=16, n_samples=2, n_targets=1, n_heldout=4, steps=0,
                         n_true=0, progress=False)
    assert none["n_true"] == 0 and "relative_error_true_fields" not in none["metrics"]["energy"]


def test_default_statistics_options_by_kind_and_targets():
    assert default_statistics_options("ising", 64) == {"quantiles": 64, "quantile_weight": 3.0}
    assert default_statistics_options("ising", 1) == {"low": False}
    assert default_statistics_options("turbulence", 1) == {"increment_lags": (4, 8), "increment_weight": 10.0}
    assert default_statistics_options("turbulence", 16) == {}
    assert default_statistics_options("ising", 1, "scattering-covariance") == {}
    # a new dict each time: a caller's update does not leak into the next run
    default_statistics_options("ising", 1)["low"] = True
    assert default_statistics_options("ising", 1) == {"low": False}


def test_default_synthesis_settings_are_those_a_run_records(tmp_path):
    ising = experiment.default_synthesis_settings("ising", 1)
    assert ising == {"match": "sign", "precondition": False, "statistics_options": {"low": False}}
    assert experiment.default_synthesis_settings("turbulence", 4) == {
        "match": "average", "precondition": True, "statistics_options": None}
    with pytest.raises(ValueError, match="kind"):
        experiment.default_synthesis_settings("clouds", 1)
    m = run_synthesis("ising", tmp_path, size=16, n_samples=1, n_targets=1, n_heldout=2, n_true=0, steps=2,
                      progress=False)
    assert m["match"] == ising["match"] and m["statistics_options"] == ising["statistics_options"]


def _save(path, array):
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array.astype(np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("name, array, kwargs, match", [
    ("wide.png", np.random.default_rng(0).integers(0, 255, (32, 48)), {}, "not square"),
    ("wide.npy", np.random.default_rng(0).normal(size=(32, 40)), {}, "not square"),
    ("flat.png", np.full((32, 32), 7), {}, "constant"),
    ("flat.npy", np.full((2, 32, 32), 0.5), {}, "constant"),
    ("tiny.npy", np.random.default_rng(0).normal(size=(6, 6)), {}, "too small"),
    ("small.npy", np.random.default_rng(0).normal(size=(16, 16)), {"J": 5}, "too small for J=5"),
    ("nan.npy", np.where(np.eye(32) > 0, np.nan, 1.0) + np.random.default_rng(0).normal(size=(32, 32)), {},
     "NaN"),
    ("rank.npy", np.zeros((2, 2, 8, 8)), {}, "shape"),
    ("other.npy", np.random.default_rng(0).normal(size=(32, 32)), {"size": 16}, "omit size"),
])
def test_bad_user_targets_are_refused_by_name_before_any_work(tmp_path, name, array, kwargs, match):
    path = _save(tmp_path / name, array)
    with pytest.raises(ValueError, match=match) as err:
        run_synthesis(path, tmp_path / "out", progress=False, **kwargs)
    assert name in str(err.value) or "size" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_non_stationary_target_is_synthesised_with_a_warning(tmp_path):
    from wavephase.metrics import NonStationaryFieldWarning

    g = np.random.default_rng(0)
    ramp = g.normal(size=(32, 32)) + np.linspace(-4, 4, 32)[:, None]
    path = _save(tmp_path / "ramp.npy", ramp)
    with pytest.warns(NonStationaryFieldWarning, match="stationary"):
        m = run_synthesis(path, tmp_path / "out", n_samples=1, steps=2, progress=False)
    assert m["steps_done"] == 2 and len(m["warnings"]) == 1 and "trend" in m["warnings"][0]
    assert "WARNING" in (tmp_path / "out" / "metrics.txt").read_text()
    from wavephase.report.summaries import summarize_synthesis

    notes = summarize_synthesis(m, tmp_path / "out")["notes"]
    assert any(n.startswith("Stationarity:") for n in notes)
    # a stationary .npy stack is taken at its own size, without a warning
    stack = _save(tmp_path / "noise.npy", g.normal(size=(2, 32, 32)))
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error", NonStationaryFieldWarning)
        m = run_synthesis(stack, tmp_path / "out2", n_samples=1, steps=1, progress=False)
    assert (m["size"], m["n_targets"], m["warnings"]) == (32, 2, [])


def test_an_unreadable_image_target_is_refused_by_name(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(ValueError, match="broken.png.*cannot read"):
        run_synthesis(str(path), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
