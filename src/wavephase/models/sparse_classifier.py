"""Scattering -> 1x1 projection -> ISTC sparse code -> linear classifier, trained end to end.

Training saves one checkpoint per epoch through :class:`wavephase.runs.Checkpoint`,
bound to the configuration *and* to the training data (features or images, and
labels): a run killed at any instant and started again resumes bit-identically
(the data order and dropout are seeded per epoch), and a checkpoint directory
made for other data or settings is refused in one line that names the file.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from wavephase.data.augment import augment_images, augmented_copies, place_on_canvas
from wavephase.models._ensemble import fit_in_processes, member_view
from wavephase.models.features import scattering_features
from wavephase.models.sparse_cascade import SparseScatteringNet, train_cascade
from wavephase.runs import Checkpoint, fingerprint
from wavephase.validation import (
    check_device,
    check_finite,
    check_images,
    check_labels,
    check_positive_int,
    check_random_state,
)

__all__ = ["SparseScatteringClassifier", "view_images"]

View = tuple[int, int]


def view_images(images: np.ndarray, view: View | None) -> np.ndarray:
    """The images of one view: on a ``size`` x ``size`` canvas, translated by ``offset`` pixels.

    Parameters
    ----------
    images : numpy.ndarray
        Images.
    view : (int, int) or None
        ``(size, offset)`` (see :func:`wavephase.data.augment.place_on_canvas`);
        None: the images as they are.

    Returns
    -------
    numpy.ndarray
        The images of the view (``images`` itself for None).

    Shapes
    ------
    images: (n, M, N) -> (n, size, size)
    """
    return images if view is None else place_on_canvas(images, *view)


def _float32(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as C-contiguous float32, refusing values beyond float32's range (the cascades train in float32)."""
    if arr.dtype == np.float64 and arr.size:
        largest = max(float(arr.max()), -float(arr.min()))  # no copy of arr, unlike np.abs
        if largest > float(np.finfo(np.float32).max):
            raise ValueError(f"{name} holds values up to {largest:.3g}, beyond float32, in which the cascades "
                             f"train; rescale {name}.")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _as_versions(feats: object, name: str) -> torch.Tensor:
    # Precomputed features of one view as float32 (V, n, C, h, w), without a copy
    # when they are float32 already (the versions of a 60k set take gigabytes).
    arr = np.asarray(feats.detach().cpu() if isinstance(feats, torch.Tensor) else feats)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim not in (4, 5):
        raise ValueError(f"precomputed {name} must have shape (n, C, h, w) or (V, n, C, h, w), got {arr.shape}.")
    versions = torch.from_numpy(_float32(arr, name))
    versions = versions if versions.ndim == 5 else versions.unsqueeze(0)
    for version in versions:  # one version at a time bounds the check's memory
        check_finite(version, name)
    return versions


class SparseScatteringClassifier(ClassifierMixin, BaseEstimator):
    """Scattering -> 1x1 projection -> ISTC sparse code -> linear classifier, trained end to end.

    Parameters
    ----------
    J, L : int
        Scattering scales and angles.
    n_proj, n_atoms, n_steps, lam, dropout, log_eps
        Architecture, see :class:`~wavephase.models.sparse_cascade.SparseScatteringNet`.
    epochs : int
        Training epochs.
    batch_size : int
        Mini-batch size.
    lr : float
        Adam learning rate (one-cycle schedule over the epochs).
    weight_decay : float
        Adam weight decay.
    label_smoothing : float
        Label smoothing of the cross-entropy, in [0, 1).
    augment : dict, optional
        Keyword arguments of :func:`wavephase.data.augment.augment_images`; when
        fitting on images, ``n_copies`` augmented copies are scattered and each
        epoch trains every sample on its original or one of its copies, drawn at
        random. With ``precomputed`` features pass the versions directly instead.
    n_copies : int
        Augmented copies of the training set (with ``augment``).
    ensemble : int
        Members of an ensemble of cascades whose class probabilities are averaged.
        Member m is the single cascade of seed ``random_state + m`` (its own
        initialisation, data order, versions drawn and dropout; the same
        augmented copies), so member 0 is the model trained with ``ensemble=1``.
    views : sequence of (int, int), optional
        ``(size, offset)`` per view: the images translated by ``offset`` pixels on
        a zero ``size`` x ``size`` canvas (:func:`view_images`), so that the
        scattering samples them on another grid. Member m fits view
        ``m % len(views)``; members of different views make less correlated errors.
        None: one view, the images as they are.
    n_jobs : int
        Members trained at once, each in a forked process with one thread (Linux;
        the features are shared copy-on-write; CPU only).
    device : str or torch.device
        Where the cascades train (``"cpu"``, ``"cuda"``) and images are scattered;
        features stay in host memory and travel one mini-batch at a time. A
        checkpoint resumes on any device; a fitted member predicts where it lives.
    random_state : int
        Seed of initialisation, data order, dropout and augmentation.
    checkpoint_dir : path-like, optional
        Directory of the per-epoch checkpoints (``checkpoint.pt`` for member 0,
        ``checkpoint-member{m}.pt`` for the others); fit resumes from them when
        they were made from the same configuration and training data, and
        refuses them otherwise.
    precomputed : bool
        ``X`` is already scattering features: (n, C, h, w), or (V, n, C, h, w)
        holding V versions of each sample (e.g. originals and augmented copies),
        cast to float32. In fit each epoch draws one version per sample; in
        predict the logits of the versions are averaged (test-time augmentation).
        With ``views``, a list of such arrays, one per view.
    progress : bool
        Progress bars.

    Attributes
    ----------
    classes_ : numpy.ndarray
        Class labels.
    members_ : list of SparseScatteringNet
        The trained cascades, in eval mode.
    histories_ : list of list of dict
        Per member and epoch: ``epoch``, ``loss``, ``train_accuracy``.
    history_ : list of dict
        Member 0's history.
    feature_shapes_ : list of tuple
        ``(C, h, w)`` of each view's features.

    Notes
    -----
    The cascades train in float32: images and features of any real dtype are cast to it.

    Shapes
    ------
    X: (n, M, N) images, or (n, C, h, w) / (V, n, C, h, w) when ``precomputed`` (a list of them
    with ``views``); y: (n,)
    """

    def __init__(
        self,
        J: int = 2,
        L: int = 8,
        n_proj: int = 64,
        n_atoms: int = 256,
        n_steps: int = 3,
        lam: float = 0.5,
        dropout: float = 0.3,
        log_eps: float = 1e-4,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        augment: dict[str, Any] | None = None,
        n_copies: int = 4,
        ensemble: int = 1,
        views: Sequence[View] | None = None,
        n_jobs: int = 1,
        device: str | torch.device = "cpu",
        random_state: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        precomputed: bool = False,
        progress: bool = False,
    ) -> None:
        self.J = J
        self.L = L
        self.n_proj = n_proj
        self.n_atoms = n_atoms
        self.n_steps = n_steps
        self.lam = lam
        self.dropout = dropout
        self.log_eps = log_eps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.n_copies = n_copies
        self.ensemble = ensemble
        self.views = views
        self.n_jobs = n_jobs
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.precomputed = precomputed
        self.progress = progress

    def _check_params(self) -> torch.device:
        """Validate the hyper-parameters (before any heavy work); return the training device."""
        for name in ("J", "L", "n_proj", "n_atoms", "n_steps", "epochs", "batch_size", "n_copies", "ensemble",
                     "n_jobs"):
            check_positive_int(getattr(self, name), name)
        check_random_state(self.random_state)
        bounds = {"lam": (0, math.inf, False), "log_eps": (0, math.inf, False), "lr": (0, math.inf, False),
                  "weight_decay": (0, math.inf, True), "dropout": (0, 1, True), "label_smoothing": (0, 1, True)}
        for name, (low, high, closed) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not (low <= value if closed else low < value) or not value < high:
                interval = f"{'[' if closed else '('}{low}, {high})"
                raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
        if str(self.device).split(":")[0] != "cpu" and self.n_jobs > 1:
            raise ValueError(f"n_jobs > 1 trains members in forked CPU processes; with device={self.device!r} "
                             f"use n_jobs=1 (the members then train one after the other on the device).")
        device = check_device(self.device)
        if self.views is not None:
            views = list(self.views)
            if not views or not all(len(v) == 2 and all(isinstance(a, (int, np.integer)) for a in v)
                                    for v in views):
                raise ValueError(f"views must be a non-empty list of (size, offset) integer pairs, got "
                                 f"{self.views!r}.")
            if self.ensemble < len(views):
                raise ValueError(f"ensemble={self.ensemble} would leave views unused: fit at least one member "
                                 f"per view (ensemble >= {len(views)}).")
        if self.augment is not None:
            if not isinstance(self.augment, dict):
                raise TypeError(f"augment must be None or a dict of augment_images keyword arguments, "
                                f"got {self.augment!r}.")
            try:  # the augmentation's own checks, on no images
                augment_images(np.zeros((0, 1, 1), np.float32), random_state=0, **self.augment)
            except TypeError as err:
                raise TypeError(f"augment holds an argument that augment_images does not take ({err}).") from None
        return device

    def _check_input(self, X: object) -> np.ndarray | list[torch.Tensor]:
        """Checked images (float32), or the features of each view as float32 ``(V, n, C, h, w)``."""
        if not self.precomputed:
            return _float32(check_images(X), "X")
        n_views = 1 if self.views is None else len(self.views)
        arrays = [X] if self.views is None else list(X)  # type: ignore[call-overload]
        if len(arrays) != n_views:
            raise ValueError(f"with views, precomputed X must be a list of {n_views} feature arrays "
                             f"(one per view), got {len(arrays)}.")
        views = [_as_versions(a, "X" if self.views is None else f"X[{v}]") for v, a in enumerate(arrays)]
        if len({v.shape[1] for v in views}) > 1:
            raise ValueError(f"the views of precomputed X must hold the same samples, got "
                             f"{[v.shape[1] for v in views]}.")
        return views

    def _view_features(self, data: np.ndarray | list[torch.Tensor], augment: bool) -> list[torch.Tensor]:
        """One ``(V, n, C, h, w)`` tensor per view: V versions of each sample (V = 1 without augmentation)."""
        if isinstance(data, list):
            return data
        n_copies = self.n_copies if augment and self.augment else 0
        versions = [data, *augmented_copies(data, n_copies, self.random_state, **(self.augment or {}))]
        return [
            torch.from_numpy(np.stack([
                scattering_features(view_images(v, view), J=self.J, L=self.L, device=self.device,
                                    progress=self.progress)
                for v in versions
            ]))
            for view in (self.views or [None])
        ]

    def training_config(self) -> dict[str, Any]:
        """The hyper-parameters that determine the members' training, as recorded in their checkpoints.

        Not how many members there are nor where or how fast they train (``ensemble``,
        ``n_jobs``, ``device``, ``progress``, ``checkpoint_dir``): member 0 of an
        ensemble resumes (or reuses) the checkpoint of the single model of the same
        seed and data, and a checkpoint resumes on any device.

        Returns
        -------
        dict
            Parameter name to value.
        """
        skip = ("progress", "checkpoint_dir", "ensemble", "n_jobs", "device")
        return {k: v for k, v in self.get_params().items() if k not in skip}

    def _checkpoint(self, path: Path | None, seed: int, view: int, data: str) -> Checkpoint:
        config = {**self.training_config(), "random_state": seed, "view": view}
        return Checkpoint(path, config, data, what="sparse-cascade checkpoint", on_mismatch="raise")

    def _fit_member(self, feats: torch.Tensor, targets: torch.Tensor, seed: int, ckpt: Checkpoint,
                    device: torch.device, position: int = 0) -> tuple[SparseScatteringNet, list[dict[str, float]]]:
        architecture = {k: getattr(self, k) for k in ("n_proj", "n_atoms", "n_steps", "lam", "dropout", "log_eps")}
        return train_cascade(
            feats, targets, len(self.classes_), architecture=architecture, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing, random_state=seed, checkpoint=ckpt, device=device,
            progress=self.progress, position=position, name=f" member {position}" if self.ensemble > 1 else "",
        )

    def fit(self, X: object, y: object) -> SparseScatteringClassifier:
        """Train every member; resume from the checkpoints of the same configuration and data.

        Parameters
        ----------
        X : array-like or list of array-like
            Images, or features when ``precomputed`` (see the class).
        y : array-like
            Integer class labels, at least two classes.

        Returns
        -------
        SparseScatteringClassifier
            ``self``.

        Raises
        ------
        wavephase.exceptions.StaleFileError
            If ``checkpoint_dir`` holds a checkpoint made from other settings or data.
        wavephase.exceptions.ChecksumError
            If a checkpoint is corrupt, truncated or of an older format.
        """
        device = self._check_params()
        if y is None:
            raise ValueError("SparseScatteringClassifier requires y to be passed, but the target y is None.")
        data = self._check_input(X)
        y = check_labels(y, len(data) if isinstance(data, np.ndarray) else data[0].shape[1])
        digest = fingerprint({}, *(data if isinstance(data, list) else [data]), y)
        feats = self._view_features(data, augment=True)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        targets = torch.from_numpy(y_idx.astype(np.int64))
        views = [member_view(range(len(feats)), m) for m in range(self.ensemble)]
        parallel = self.n_jobs > 1 and self.ensemble > 1
        with tempfile.TemporaryDirectory(prefix="wavephase-ensemble-") as tmp:
            # Parallel members hand their result back through their final checkpoint.
            root = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else Path(tmp) if parallel else None
            ckpts = [self._checkpoint(None if root is None else root / ("checkpoint.pt" if m == 0 else
                                                                        f"checkpoint-member{m}.pt"),
                                      self.random_state + m, views[m], digest)
                     for m in range(self.ensemble)]

            def fit_member(m: int) -> tuple[SparseScatteringNet, list[dict[str, float]]]:
                return self._fit_member(feats[views[m]], targets, self.random_state + m, ckpts[m], device, m)

            if parallel:
                fit_in_processes(fit_member, self.ensemble, self.n_jobs)
            members = [fit_member(m) for m in range(self.ensemble)]
        self.members_ = [net for net, _ in members]
        self.histories_ = [history for _, history in members]
        self.history_ = self.histories_[0]
        self.feature_shapes_ = [tuple(v.shape[2:]) for v in feats]
        return self

    def _fitted_features(self, X: object, max_samples: int | None = None) -> list[torch.Tensor]:
        check_is_fitted(self, "members_")
        data = self._check_input(X)
        if max_samples is not None:
            data = data[:max_samples] if isinstance(data, np.ndarray) else [v[:, :max_samples] for v in data]
        feats = self._view_features(data, augment=False)
        for v, (f, expected) in enumerate(zip(feats, self.feature_shapes_)):
            if tuple(f.shape[2:]) != expected:
                raise ValueError(f"X gives features of shape {tuple(f.shape[2:])} (view {v}), but this "
                                 f"SparseScatteringClassifier was fitted on {expected}; pass data of the fitted size.")
        return feats

    def member_proba(self, X: object, batch_size: int = 1000) -> np.ndarray:
        """Class probabilities of each member, its logits averaged over the versions of ``X``.

        Parameters
        ----------
        X : array-like or list of array-like
            Images, or features when ``precomputed`` (see the class).
        batch_size : int
            Samples per forward pass.

        Returns
        -------
        numpy.ndarray
            float32 probabilities; an empty ``X`` gives an empty result.

        Shapes
        ------
        X: (n, M, N) or (V, n, C, h, w) -> (ensemble, n, n_classes)
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        feats = self._fitted_features(X)
        if feats[0].shape[1] == 0:
            return np.empty((len(self.members_), 0, len(self.classes_)), dtype=np.float32)
        out = []
        with torch.no_grad():
            for m, net in enumerate(self.members_):
                device = next(net.parameters()).device
                logits = torch.stack([
                    torch.cat([net(v[i : i + batch_size].to(device)) for i in range(0, v.shape[0], batch_size)])
                    for v in member_view(feats, m)
                ]).mean(0)
                out.append(torch.softmax(logits, dim=1).cpu().numpy())
        return np.stack(out)

    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities averaged over the members, columns in the order of ``classes_``.

        Shapes
        ------
        X: (n, M, N) images or precomputed features (see the class) -> (n, n_classes)
        """
        return self.member_proba(X).mean(0)

    def predict(self, X: object) -> np.ndarray:
        """Predicted labels (from ``classes_``): the class of highest mean probability over the members.

        Shapes
        ------
        X: (n, M, N) images or precomputed features (see the class) -> (n,)
        """
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[proba.argmax(1)]

    def sparse_code_report(self, X: object, max_samples: int = 1000) -> dict[str, float]:
        """Sparsity and relative reconstruction error of member 0's ISTC codes of ``X``.

        Parameters
        ----------
        X : array-like or list of array-like
            Images, or features when ``precomputed`` (the first version of member 0's view is used).
        max_samples : int
            Samples coded.

        Returns
        -------
        dict
            ``sparsity`` and ``relative_error`` (see :func:`wavephase.sparse.ista.sparse_coding_report`).
        """
        feats = member_view(self._fitted_features(X, check_positive_int(max_samples, "max_samples")), 0)[0]
        net = self.members_[0]
        with torch.no_grad():
            x, _ = net.code(feats.to(next(net.parameters()).device))
            return net.istc.report(x)
