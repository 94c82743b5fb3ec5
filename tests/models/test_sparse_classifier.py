"""SparseScatteringClassifier: learning, versions, ensembles, views, and checkpoints that resume or refuse."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from wavephase.data.augment import place_on_canvas
from wavephase.exceptions import ChecksumError, StaleFileError
from wavephase.models import SparseScatteringClassifier
from wavephase.models.features import scattering_features
from wavephase.runs import Checkpoint


@pytest.fixture(scope="module")
def feats(bars) -> tuple[np.ndarray, np.ndarray]:
    """Scattering (J=2, L=4) of the training and test bars."""
    X, _, Xt, _ = bars
    return scattering_features(X, J=2, L=4), scattering_features(Xt, J=2, L=4)


def _sparse(tmp: Path | None) -> SparseScatteringClassifier:
    return SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=3, batch_size=32, lr=5e-3,
                                      precomputed=True, checkpoint_dir=tmp)


def _die_after_first_save(monkeypatch: pytest.MonkeyPatch, kill: bool = False) -> None:
    """Make every checkpoint save stop its run right after writing (SIGKILL for a member's own process)."""
    real_save = Checkpoint.save

    def save_then_die(self: Checkpoint, state: dict) -> None:
        real_save(self, state)
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", save_then_die)


def test_sparse_cascade_learns_and_reports_sparsity(bars, feats):
    _, y, _, yt = bars
    F, Ft = feats
    model = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=8, batch_size=32, lr=5e-3,
                                       precomputed=True).fit(F, y)
    assert model.score(Ft, yt) > 0.8
    report = model.sparse_code_report(Ft)
    assert 0 < report["sparsity"] < 1 and np.isfinite(report["relative_error"])
    assert len(model.history_) == 8 and model.feature_shapes_ == [(25, 4, 4)]


def test_sparse_cascade_trains_on_augmented_images(bars):
    X, y, Xt, yt = bars
    model = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=8, batch_size=32, lr=5e-3,
                                       augment={"max_shift": 2, "flip": True}, n_copies=2).fit(X, y)
    assert model.score(Xt, yt) > 0.8
    with pytest.raises(TypeError, match="augment must be None or a dict"):
        SparseScatteringClassifier(augment=2).fit(X, y)
    with pytest.raises(TypeError, match="augment holds an argument"):
        SparseScatteringClassifier(augment={"shift": 2}).fit(X, y)
    with pytest.raises(ValueError, match="max_shift"):
        SparseScatteringClassifier(augment={"max_shift": -1}).fit(X, y)
    with pytest.raises(ValueError, match="label_smoothing"):
        SparseScatteringClassifier(label_smoothing=1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_jobs=1"):
        SparseScatteringClassifier(device="cuda", ensemble=2, n_jobs=2).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        SparseScatteringClassifier(device="tpu").fit(X, y)
    with pytest.raises(ValueError, match="target y is None"):
        SparseScatteringClassifier().fit(X, None)
    with pytest.raises(NotFittedError):
        SparseScatteringClassifier().predict(X)
    with pytest.raises(ValueError, match="fitted on"):
        model.predict(X[:, :12, :12])


def test_versions_of_test_samples_average_their_logits(bars, feats):
    X, y, Xt, _ = bars
    F, Ft = feats
    Ft_shift = scattering_features(np.roll(Xt, 1, axis=2), J=2, L=4)
    model = _sparse(None).fit(F, y)
    np.testing.assert_allclose(model.predict_proba(np.stack([Ft, Ft])), model.predict_proba(Ft), rtol=1e-5)
    logits = [np.log(model.predict_proba(f)) for f in (Ft, Ft_shift)]
    mean = (logits[0] + logits[1]) / 2  # log-softmax differs from the logits by a per-sample constant only
    expected = np.exp(mean) / np.exp(mean).sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(np.stack([Ft, Ft_shift])), expected, rtol=1e-4, atol=1e-6)


def test_empty_batches_give_empty_results(bars, feats):
    X, y, _, _ = bars
    model = _sparse(None).fit(feats[0], y)
    assert model.member_proba(feats[1][:0]).shape == (1, 0, 3)
    assert model.predict_proba(feats[1][:0]).shape == (0, 3)
    assert model.predict(np.stack([feats[1][:0]] * 2)).shape == (0,)
    on_images = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=1).fit(X, y)
    assert on_images.predict(X[:0]).shape == (0,)


@pytest.mark.parametrize("versions", [1, 2])
def test_sparse_cascade_resumes_after_interruption_identically(bars, feats, tmp_path, monkeypatch, versions):
    X, y, _, _ = bars
    F, Ft = feats
    if versions == 2:  # training on originals and one shifted copy
        F = np.stack([F, scattering_features(np.roll(X, 1, axis=1), J=2, L=4)])
    reference = _sparse(tmp_path / "straight").fit(F, y).predict_proba(Ft)
    with monkeypatch.context() as patch:
        _die_after_first_save(patch)
        with pytest.raises(KeyboardInterrupt):
            _sparse(tmp_path / "killed").fit(F, y)
    resumed = _sparse(tmp_path / "killed").fit(F, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    np.testing.assert_allclose(resumed.predict_proba(Ft), reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(StaleFileError, match="another configuration or other data"):
        _sparse(tmp_path / "killed").set_params(n_atoms=32).fit(F, y)
    with pytest.raises(StaleFileError, match="another configuration or other data"):  # other number of versions
        _sparse(tmp_path / "killed").fit(np.stack([F] * 3) if versions == 1 else F[0], y)


def test_checkpoint_of_other_data_of_the_same_size_is_refused(bars, feats, tmp_path):
    # Issue 18: a directory holding the model of other data used to return that model.
    X, y, _, _ = bars
    F, _ = feats
    _sparse(tmp_path).fit(F, y)
    other = scattering_features(np.ascontiguousarray(X[:, ::-1]), J=2, L=4)
    assert other.shape == F.shape
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(StaleFileError, match=f"sparse-cascade checkpoint {path} was made from") as err:
        _sparse(tmp_path).fit(other, y)
    assert "\n" not in str(err.value)
    with pytest.raises(StaleFileError):  # the same features with other labels
        _sparse(tmp_path).fit(F, (y + 1) % 3)
    with pytest.raises(StaleFileError):  # from images: the images are the data
        images = SparseScatteringClassifier(J=2, L=4, n_proj=8, n_atoms=16, epochs=1, checkpoint_dir=tmp_path / "i")
        images.fit(X, y)
        images.fit(X[::-1].copy(), y)


@pytest.mark.parametrize("damage", ["truncate", "zero", "garble", "old format"])
def test_damaged_checkpoint_is_refused_in_one_line(bars, feats, tmp_path, damage):
    _, y, _, _ = bars
    F, _ = feats
    _sparse(tmp_path).fit(F, y)
    path = tmp_path / "checkpoint.pt"
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) - 100]
    elif damage == "zero":
        raw = bytearray(len(raw))
    elif damage == "garble":
        raw[-500::50] = bytes(b ^ 0xFF for b in raw[-500::50])
    else:  # a checkpoint written before the redesign: a bare torch.save
        torch.save({"model": {}, "epoch": 3}, path)
    if damage != "old format":
        path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match=f"sparse-cascade checkpoint {path} is") as err:
        _sparse(tmp_path).fit(F, y)
    assert "\n" not in str(err.value) and "delete it" in str(err.value)


def test_ensemble_averages_members_that_are_the_single_models_of_their_seeds(bars, feats, tmp_path):
    _, y, _, _ = bars
    F, Ft = feats
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
    with pytest.raises(ValueError, match="ensemble must be >= 1"):
        _sparse(None).set_params(ensemble=0).fit(F, y)


def test_ensemble_members_fit_their_own_view(bars, tmp_path):
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
def test_ensemble_resumes_after_a_member_is_killed(bars, feats, tmp_path, monkeypatch, n_jobs):
    _, y, _, _ = bars
    F, Ft = feats
    # The same n_jobs as the killed run: members in their own processes use one thread each, and
    # a different thread count changes float rounding (probabilities by ~1e-3 after training).
    reference = _sparse(None).set_params(ensemble=2, n_jobs=n_jobs).fit(F, y).predict_proba(Ft)
    killed = _sparse(tmp_path).set_params(ensemble=2, n_jobs=n_jobs)
    with monkeypatch.context() as patch:
        _die_after_first_save(patch, kill=n_jobs > 1)  # a member's own process is killed for real
        with pytest.raises(RuntimeError if n_jobs > 1 else KeyboardInterrupt):
            killed.fit(F, y)
    resumed = killed.fit(F, y)
    assert [[h["epoch"] for h in hist] for hist in resumed.histories_] == [[1, 2, 3]] * 2
    np.testing.assert_allclose(resumed.predict_proba(Ft), reference, rtol=1e-5, atol=1e-6)
