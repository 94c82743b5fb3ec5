"""Scattering classifiers on a small synthetic problem; checkpoint resume; CLI on IDX files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from wavephase.cli.main import main
from wavephase.data.idx import to_idx_bytes
from wavephase.models import classification as clf_mod
from wavephase.models.classification import ByteDropout, ScatteringClassifier, SparseScatteringClassifier, scattering_features


def _oriented_bars(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # Class = orientation of a randomly placed bar (0: horizontal, 1: vertical, 2: diagonal)
    # plus noise: a translation-invariant, orientation-selective problem that
    # scattering separates linearly and raw pixels do not.
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = 0.2 * rng.standard_normal((n, size, size)).astype(np.float32)
    u = np.arange(size)
    for i, c in enumerate(y):
        a, b = rng.integers(3, size - 3, 2)
        if c == 0:
            X[i, a, 2:-2] += 1
        elif c == 1:
            X[i, 2:-2, b] += 1
        else:
            X[i, u[2:-2], (u[2:-2] + a) % size] += 1
    return X, y.astype(np.int64)


@pytest.fixture(scope="module")
def bars() -> tuple[np.ndarray, ...]:
    X, y = _oriented_bars(260)
    return X[:200], y[:200], X[200:], y[200:]


@pytest.mark.parametrize("kind", ["linear", "svm"])
def test_scattering_classifier_learns_orientations(bars, kind):
    X, y, Xt, yt = bars
    model = ScatteringClassifier(J=2, L=4, classifier=kind).fit(X, y)
    assert model.score(Xt, yt) > 0.9
    p = model.predict_proba(Xt)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[p.argmax(1)], model.predict(Xt))


def test_default_regularisation_depends_on_the_classifier(bars):
    X, y, _, _ = bars
    F = scattering_features(X, J=2, L=4)
    assert ScatteringClassifier(precomputed=True).fit(F, y).pipeline_[-1].C == 0.03
    assert ScatteringClassifier(precomputed=True, classifier="svm").fit(F, y).pipeline_[-1].C == 1.0
    assert ScatteringClassifier(precomputed=True, C=0.5).fit(F, y).pipeline_[-1].C == 0.5
    with pytest.raises(ValueError, match="C must be positive"):
        ScatteringClassifier(precomputed=True, C=0.0).fit(F, y)


def test_precomputed_features_give_the_same_predictions(bars):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    a = ScatteringClassifier(J=2, L=4).fit(X, y).predict(Xt)
    b = ScatteringClassifier(J=2, L=4, precomputed=True).fit(F, y).predict(Ft)
    np.testing.assert_array_equal(a, b)


def test_bad_input_and_unfitted_model_are_refused(bars):
    X, y, _, _ = bars
    with pytest.raises(RuntimeError, match="not fitted"):
        ScatteringClassifier().predict(X)
    with pytest.raises(TypeError, match="floating"):
        ScatteringClassifier(J=1, L=4).fit((X * 255).astype(np.uint8), y)
    with pytest.raises(ValueError, match="labels"):
        ScatteringClassifier(J=1, L=4).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        ScatteringClassifier(J=1, L=4).fit(X[0], y)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ScatteringClassifier(J=1, L=4).fit(bad, y)
    with pytest.raises(ValueError, match="classifier"):
        ScatteringClassifier(J=1, L=4, classifier="tree").fit(X, y)


def _sparse(tmp: Path | None) -> SparseScatteringClassifier:
    return SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=3, batch_size=32, lr=5e-3,
                                      precomputed=True, checkpoint_dir=tmp)


def test_sparse_cascade_learns_and_reports_sparsity(bars):
    X, y, Xt, yt = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    model = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=8, batch_size=32, lr=5e-3,
                                       precomputed=True).fit(F, y)
    assert model.score(Ft, yt) > 0.8
    report = model.sparse_code_report(Ft)
    assert 0 < report["sparsity"] < 1 and np.isfinite(report["relative_error"])
    assert len(model.history_) == 8


def test_sparse_cascade_trains_on_augmented_images(bars):
    X, y, Xt, yt = bars
    model = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=8, batch_size=32, lr=5e-3,
                                       augment={"max_shift": 2, "flip": True}, n_copies=2).fit(X, y)
    assert model.score(Xt, yt) > 0.8
    with pytest.raises(TypeError, match="augment"):
        SparseScatteringClassifier(augment=2).fit(X, y)
    with pytest.raises(ValueError, match="label_smoothing"):
        SparseScatteringClassifier(label_smoothing=1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_jobs=1"):
        SparseScatteringClassifier(device="cuda", ensemble=2, n_jobs=2).fit(X, y)


def test_versions_of_test_samples_average_their_logits(bars):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    Ft_shift = scattering_features(np.roll(Xt, 1, axis=2), J=2, L=4)
    model = _sparse(None).fit(F, y)
    np.testing.assert_allclose(model.predict_proba(np.stack([Ft, Ft])), model.predict_proba(Ft), rtol=1e-5)
    logits = [np.log(model.predict_proba(f)) for f in (Ft, Ft_shift)]
    mean = (logits[0] + logits[1]) / 2  # log-softmax differs from the logits by a per-sample constant only
    expected = np.exp(mean) / np.exp(mean).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(np.stack([Ft, Ft_shift])), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("versions", [1, 2])
def test_sparse_cascade_resumes_after_interruption_identically(bars, tmp_path, monkeypatch, versions):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    if versions == 2:  # training on originals and one shifted copy
        F = np.stack([F, scattering_features(np.roll(X, 1, axis=1), J=2, L=4)])
    reference = _sparse(tmp_path / "straight").fit(F, y).predict_proba(Ft)

    real_save = clf_mod.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(clf_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _sparse(tmp_path / "killed").fit(F, y)
    monkeypatch.setattr(clf_mod, "save_checkpoint", real_save)
    resumed = _sparse(tmp_path / "killed").fit(F, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    np.testing.assert_allclose(resumed.predict_proba(Ft), reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="different configuration"):
        SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=32, epochs=3, precomputed=True,
                                   checkpoint_dir=tmp_path / "killed").fit(F, y)
    with pytest.raises(ValueError, match="different configuration"):  # other number of versions
        _sparse(tmp_path / "killed").fit(np.stack([F] * 3) if versions == 1 else F[0], y)


def test_ensemble_averages_members_that_are_the_single_models_of_their_seeds(bars, tmp_path):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    ens = _sparse(tmp_path / "ens").set_params(ensemble=3).fit(F, y)
    members = ens.member_proba(Ft)
    assert members.shape == (3, len(Ft), 3) and len(ens.histories_) == 3
    for m in (0, 2):
        single = _sparse(None).set_params(random_state=m).fit(F, y).predict_proba(Ft)
        np.testing.assert_allclose(members[m], single, rtol=1e-5, atol=1e-6)
    assert not np.allclose(members[0], members[1], atol=1e-3)  # other seeds, other models
    np.testing.assert_allclose(ens.predict_proba(Ft), members.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(ens.predict(Ft), ens.classes_[members.mean(0).argmax(1)])
    # Member 0 is the single model: its checkpoint serves a later ensemble=1 run as is.
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == [
        "checkpoint-member1.pt", "checkpoint-member2.pt", "checkpoint.pt"]
    np.testing.assert_allclose(_sparse(tmp_path / "ens").fit(F, y).predict_proba(Ft), members[0], rtol=1e-6)
    with pytest.raises(ValueError, match="ensemble must be a positive integer"):
        _sparse(None).set_params(ensemble=0).fit(F, y)


def test_ensemble_members_fit_their_own_view(bars, tmp_path):
    from wavephase.data.augment import place_on_canvas

    X, y, Xt, yt = bars
    views = [(16, 0), (20, -1)]
    F, Ft = ([scattering_features(place_on_canvas(a, *v), J=2, L=4) for v in views] for a in (X, Xt))
    assert F[1].shape[2:] == (5, 5) and F[0].shape[2:] == (4, 4)
    ens = _sparse(tmp_path / "views").set_params(ensemble=3, views=views).fit(F, y)
    members = ens.member_proba(Ft)
    assert members.shape == (3, len(Xt), 3)
    # Member m is the single model of seed m fitted to view m mod 2 (member 2: view 0).
    for m, v in ((1, 1), (2, 0)):
        single = _sparse(None).set_params(random_state=m).fit(F[v], y).predict_proba(Ft[v])
        np.testing.assert_allclose(members[m], single, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ens.predict_proba(Ft), members.mean(0), rtol=1e-6)
    # From images, each view's canvas is made inside the model.
    from_images = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=8, batch_size=32, lr=5e-3,
                                             ensemble=2, views=views).fit(X, y)
    assert from_images.score(Xt, yt) > 0.8
    with pytest.raises(ValueError, match="ensemble >= 2"):
        _sparse(None).set_params(views=views).fit(F, y)
    with pytest.raises(ValueError, match="list of 2 feature arrays"):
        _sparse(None).set_params(ensemble=2, views=views).fit(F[:1], y)
    with pytest.raises(ValueError, match="same samples"):
        _sparse(None).set_params(ensemble=2, views=views).fit([F[0], F[1][:10]], y)
    with pytest.raises(ValueError, match="size, offset"):
        _sparse(None).set_params(ensemble=2, views=[(16, 0.5)]).fit(F, y)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ensemble_resumes_after_a_member_is_killed(bars, tmp_path, monkeypatch, n_jobs):
    import os
    import signal

    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    # The same n_jobs as the killed run: members in their own processes use one thread each, and
    # a different thread count changes float rounding (probabilities by ~1e-3 after training).
    reference = _sparse(None).set_params(ensemble=2, n_jobs=n_jobs).fit(F, y).predict_proba(Ft)
    real_save = clf_mod.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if n_jobs > 1:  # the member's own process, killed for real
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt

    monkeypatch.setattr(clf_mod, "save_checkpoint", save_then_die)
    killed = _sparse(tmp_path).set_params(ensemble=2, n_jobs=n_jobs)
    with pytest.raises(RuntimeError if n_jobs > 1 else KeyboardInterrupt):
        killed.fit(F, y)
    monkeypatch.setattr(clf_mod, "save_checkpoint", real_save)
    resumed = killed.fit(F, y)
    assert [[h["epoch"] for h in hist] for hist in resumed.histories_] == [[1, 2, 3]] * 2
    np.testing.assert_allclose(resumed.predict_proba(Ft), reference, rtol=1e-5, atol=1e-6)


def _bars_idx_dir(root: Path, seed: int) -> Path:
    """300 oriented-bar images as gzipped IDX files, 240 train / 60 test, under ``root``."""
    X, y = _oriented_bars(300, size=28, seed=seed)
    img = np.clip((X + 0.5) * 160, 0, 255)
    root.mkdir(parents=True)
    for name, arr in {"train-images-idx3-ubyte": img[:240], "train-labels-idx1-ubyte": y[:240],
                      "t10k-images-idx3-ubyte": img[240:], "t10k-labels-idx1-ubyte": y[240:]}.items():
        (root / f"{name}.gz").write_bytes(gzip.compress(to_idx_bytes(arr.astype(np.uint8))))
    return root


def test_classify_cli_writes_metrics_and_confusion_matrix(tmp_path):
    _bars_idx_dir(tmp_path / "idx", seed=1)
    out = tmp_path / "out"
    status = main(["classify", "--dataset", "mnist", "--model", "scattering-linear", "--data-dir",
                   str(tmp_path / "idx"), "--no-cache", "--L", "4", "--out", str(out)])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_error", "train_size", "model", "dataset", "seconds"):
        assert key in metrics
    assert metrics["train_size"] == 240 and metrics["test_accuracy"] > 0.8
    cm = np.array(json.loads((out / "confusion.json").read_text())["matrix"])
    assert cm.sum() == 60
    assert (out / "confusion.png").stat().st_size > 1000
    assert main(["classify", "--dataset", "mnist", "--train-size", "1", "--data-dir", str(tmp_path / "idx"),
                 "--out", str(out)]) == 2


def test_classify_cli_validation_split_with_augmentation_and_test_flips(tmp_path):
    _bars_idx_dir(tmp_path / "idx", seed=2)
    out = tmp_path / "out"
    # MNIST (Fashion-MNIST files are checked against the official digests): its
    # augmentation rotates and deforms; the mirror images only exercise --test-flip.
    status = main(["classify", "--dataset", "mnist", "--model", "sparse-scattering", "--data-dir",
                   str(tmp_path / "idx"), "--no-cache", "--L", "4", "--epochs", "2", "--augment", "2",
                   "--test-flip", "--test-augment", "1", "--validation-size", "40", "--n-proj", "6",
                   "--n-atoms", "12", "--n-steps", "2", "--label-smoothing", "0.1", "--ensemble", "2",
                   "--jobs", "2", "--views", "28:0", "32:-2", "--out", str(out)])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluated_on"].startswith("validation")
    assert (metrics["train_size"], metrics["test_size"]) == (200, 40)
    assert metrics["augment"] == 2 and metrics["test_flip"] and metrics["augmentation"]["elastic"] > 0
    assert metrics["test_augment"] == 1
    assert len(metrics["history"]) == 2
    assert (metrics["params"]["n_proj"], metrics["params"]["n_atoms"], metrics["params"]["n_steps"]) == (6, 12, 2)
    assert metrics["params"]["label_smoothing"] == 0.1
    assert metrics["params"]["ensemble"] == 2 and len(metrics["member_test_errors"]) == 2
    assert metrics["params"]["views"] == [[28, 0], [32, -2]]
    with pytest.raises(SystemExit):  # a view needs its offset
        main(["classify", "--views", "32", "--out", str(out)])
    with pytest.raises(ValueError, match="views apply"):
        clf_mod.run_classification("mnist", "scattering-linear", out, model_params={"views": [(32, -2)]},
                                   data_path=tmp_path / "idx", cache_features=False)
    with pytest.raises(ValueError, match="sparse-scattering"):
        clf_mod.run_classification("mnist", "scattering-linear", out, augment=1,
                                   data_path=tmp_path / "idx", cache_features=False)
    with pytest.raises(ValueError, match="test_augment must be a non-negative"):
        clf_mod.run_classification("mnist", "sparse-scattering", out, test_augment=-1,
                                   data_path=tmp_path / "idx", cache_features=False)


def test_byte_dropout_drops_at_its_rate_keeps_the_mean_and_is_seeded():
    import torch

    drop = ByteDropout(0.3)
    x = torch.ones(200, 1000)
    torch.manual_seed(0)
    y = drop(x)
    assert abs(float((y == 0).float().mean()) - 77 / 256) < 0.005
    assert abs(float(y.mean()) - 1.0) < 0.01
    torch.manual_seed(0)
    torch.testing.assert_close(drop(x), y)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="p must be"):
        ByteDropout(1.0)
