"""Generative scattering networks: data -> fit -> baselines -> metrics -> figures -> metrics.json.

:func:`run_generation` fits a :class:`~wavephase.models.GenerativeScattering` on
MNIST, Fashion-MNIST or polygons and measures it against two baselines, a
Gaussian of pixels and a convolutional VAE: PSNR of reconstructions, Fréchet
scattering distance (FSD) of samples to the test images, interpolation paths
and coarse-to-fine refinements. Every random draw derives from ``random_state``,
so a run made twice gives the same ``metrics.json``, timings and the ``"run"``
block aside.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wavephase.data import load_fashion_mnist, load_mnist, make_polygons
from wavephase.experiments.generation_scores import SCORE_NAMES, fit_sample_scorer
from wavephase.experiments.outputs import prepare_output_dir, write_metrics
from wavephase.metrics.generation import frechet_distance, path_smoothness, psnr
from wavephase.models.baselines import GaussianPixelSampler, train_vae
from wavephase.models.code_prior import code_log_likelihood
from wavephase.models.generative import GenerativeScattering
from wavephase.validation import check_device, check_positive_int, check_random_state

__all__ = ["DATASETS", "DEFAULT_TRAIN_SIZE", "load_generation_images", "run_generation"]

DATASETS = ("mnist", "fashion-mnist", "polygons")
# Training images when none are asked for. Polygons are 64 x 64, four times the pixels of the
# padded digits, so the most whose run fits the 30 minutes asked on 2 cores: 20,000 ran in 15.8-18.4
# min on 2 idle cores (three seeds; 5,000 in 5.6), and the decoder and VAE epochs grow linearly with
# the images, so 40,000 would take about 35.
DEFAULT_TRAIN_SIZE = {"mnist": 40000, "fashion-mnist": 40000, "polygons": 20000}
# Tiny sizes for smoke tests: small enough that a whole run takes seconds.
_QUICK = dict(train_size=200, test_size=100, epochs=1, n_components=16, n_fsd=100, polygon_size=32)


def load_generation_images(dataset: str, train_size: int, test_size: int, *, random_state: int = 0,
                           polygon_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Training and test images in [0, 1], at a size divisible by ``2**J``, and the pad width.

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist", "polygons"}
        MNIST-like images are zero-padded from 28x28 to 32x32, so that J=3
        averaging (8 pixels) and the decoder's 3 upsamplings fit.
    train_size, test_size : int
        Images of each split (the first ones of MNIST-like splits).
    random_state : int
        Seed of the polygons; the test polygons come from a stream disjoint from the training ones.
    polygon_size : int
        Side of the polygon images.

    Returns
    -------
    train, test : torch.Tensor
        float32 images.
    pad : int
        Zero rows and columns added on each side (to crop them off again).

    Shapes
    ------
    -> train (train_size, S, S), test (test_size, S, S)
    """
    if dataset == "polygons":
        train, _ = make_polygons(train_size, size=polygon_size, random_state=random_state)
        test, _ = make_polygons(test_size, size=polygon_size, random_state=random_state + 1_000_003)
        return torch.from_numpy(train), torch.from_numpy(test), 0
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}, got {dataset!r}.")
    x_train, _, x_test, _ = load_mnist() if dataset == "mnist" else load_fashion_mnist()
    out = []
    for x, n, split in ((x_train, train_size, "training"), (x_test, test_size, "test")):
        if n > len(x):
            raise ValueError(f"{dataset} has {len(x)} {split} images, fewer than the {n} asked for.")
        out.append(nn.functional.pad(torch.as_tensor(x[:n], dtype=torch.float32), (2, 2, 2, 2)))
    return out[0], out[1], 2


def _save_grid(path: Path, rows: list[torch.Tensor], labels: list[str], title: str) -> None:
    """One row of images per entry of ``rows``, labelled on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols + 1.2, 1.1 * len(rows) + 0.4), squeeze=False)
    for i, (row, label) in enumerate(zip(rows, labels)):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(row[j].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _check_arguments(dataset: str, sizes: dict[str, int], vae_epochs: int | None, checkpoint: str | Path | None,
                     quick: bool) -> int:
    """Every argument of :func:`run_generation` that can be checked before loading data; the VAE's epochs.

    ``sizes`` becomes the sizes used: the tiny ones with ``quick``, once the given ones are checked too.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}, got {dataset!r}.")
    for name, minimum in (("train_size", 2), ("test_size", 2), ("epochs", 0), ("n_components", 1), ("n_fsd", 2)):
        check_positive_int(sizes[name], name, minimum=minimum)
    if quick:
        sizes.update(_QUICK)
    if sizes["n_components"] >= sizes["train_size"]:
        raise ValueError(f"n_components={sizes['n_components']} must be smaller than train_size="
                         f"{sizes['train_size']}; lower it or train on more images.")
    if checkpoint is not None and Path(checkpoint).is_dir():
        raise ValueError(f"checkpoint={str(checkpoint)!r} is a folder; pass a file path.")
    # The VAE's epochs are fixed by the recipe, not measured at run time, so that a run is reproducible
    # from its seed; they are chosen so that the VAE trains at least as long as our model. Measured on one
    # thread at 3000 MNIST and 1500 polygon images (256 components, a shared machine): a VAE epoch costs
    # 1.1-1.7 decoder epochs and our scattering embedding 1.6-3.3. The mixture prior's EM (50 diagonal
    # components, at most 20,000 codes) adds less than a decoder epoch (2 s at 5,000 MNIST codes; see the
    # run's prior_seconds); `epochs + 6` VAE epochs leave a margin for it and for a machine whose load
    # changes during the run: 1.1 (epochs + 6) >= epochs + 3.3 + 3. Each run records both times.
    return sizes["epochs"] + 6 if vae_epochs is None else check_positive_int(vae_epochs, "vae_epochs", minimum=0)


def _prior_components(prior_components: int | None, train_size: int) -> int:
    """Components of the mixture prior: as given, or 50 with at least 100 training codes each."""
    if prior_components is None:
        return max(1, min(50, train_size // 100))
    return check_positive_int(prior_components, "prior_components")


def _sample_scores(dataset: str, train: torch.Tensor, test: torch.Tensor, pad: int, random_state: int,
                   sets: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``sample_score<suffix>`` of each image set (and the class-histogram entropy for MNIST-like data)."""
    score, info = fit_sample_scorer(dataset, train, test, pad, random_state=random_state)
    out: dict[str, Any] = {"sample_score_name": SCORE_NAMES[dataset], **info}
    for suffix, images in sets.items():
        result = score(images)
        out[f"sample_score{suffix}"] = result["score"]
        if "class_entropy_bits" in result:
            out[f"sample_class_entropy_bits{suffix}"] = result["class_entropy_bits"]
            out[f"sample_class_histogram{suffix}"] = result["class_histogram"]
    return out


def run_generation(
    dataset: str,
    out_dir: str | Path,
    *,
    train_size: int | None = None,
    test_size: int = 2000,
    epochs: int = 8,
    n_components: int = 256,
    n_fsd: int = 2000,
    vae_epochs: int | None = None,
    prior: str = "mixture",
    prior_components: int | None = None,
    random_state: int = 0,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    quick: bool = False,
) -> dict[str, Any]:
    """Train a generative scattering network and its baselines; write figures and metrics.

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist", "polygons"}
        MNIST-like images are zero-padded from 28x28 to 32x32 (J=3); polygons
        are 64x64 (J=4).
    out_dir : path-like
        Output folder for PNG figures and ``metrics.json``, checked before any work.
    train_size, test_size : int
        Training and test images used; ``train_size`` defaults to
        :data:`DEFAULT_TRAIN_SIZE` (40,000 digits or clothes, 20,000 polygons).
    epochs : int
        Decoder training epochs.
    n_components : int
        Whitened dimensions.
    n_fsd : int
        Generated images per model for the Fréchet scattering distance.
    vae_epochs : int, optional
        Training epochs of the VAE baseline; default ``epochs + 6``, which gives
        it at least the training time of our model (embedding and prior included;
        the measurements behind it are in the source of ``_check_arguments``).
    prior, prior_components :
        Model of the codes that samples are drawn from (see
        :class:`~wavephase.models.GenerativeScattering`): by default a mixture of
        Gaussians with diagonal covariances fitted to the training codes, with
        ``min(50, train_size // 100)`` components (at least 100 codes each: at 200
        codes, 50 components fitted the held-out codes worse than white noise).
    random_state : int
        Seed of data (polygons), initialisation, training and sampling.
    checkpoint : path-like, optional
        Checkpoint file of the decoder training (resumed if present); the VAE's
        goes beside it, with ``-vae`` added to its name.
    device : str or torch.device
        Torch device for both trainings.
    progress : bool
        Progress bars.
    quick : bool
        Tiny sizes (and 32x32 polygons) for smoke tests; overrides the sizes above.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``: PSNR of train/test reconstructions
        (dB, mean over images, measured on the original 28x28 area for MNIST),
        Fréchet scattering distances of our samples and of the two baselines to
        the test images, sample scores (``sample_score``, ``sample_score_vae``,
        ``sample_score_gaussian``, and ``sample_score_train`` / ``sample_score_test``
        on real images as the ceiling; see
        :mod:`~wavephase.experiments.generation_scores`), interpolation path
        statistics (ours and linear blending), parameter counts and timings.
    """
    t_start = time.perf_counter()
    if train_size is None and dataset in DEFAULT_TRAIN_SIZE:
        train_size = DEFAULT_TRAIN_SIZE[dataset]
    sizes = dict(train_size=train_size, test_size=test_size, epochs=epochs, n_components=n_components, n_fsd=n_fsd,
                 polygon_size=64)
    vae_epochs = _check_arguments(dataset, sizes, vae_epochs, checkpoint, quick)
    if prior not in ("mixture", "gaussian"):
        raise ValueError(f"prior must be 'mixture' or 'gaussian', got {prior!r}.")
    n_mixture = _prior_components(prior_components, sizes["train_size"])
    random_state = check_random_state(random_state)
    device = check_device(device)
    out = prepare_output_dir(out_dir, "out_dir")
    vae_checkpoint = None if checkpoint is None else Path(checkpoint).with_stem(Path(checkpoint).stem + "-vae")

    train, test, pad = load_generation_images(dataset, sizes["train_size"], sizes["test_size"],
                                              random_state=random_state, polygon_size=sizes["polygon_size"])
    J = 4 if train.shape[-1] >= 64 else 3
    c0, c1 = slice(pad, train.shape[-2] - pad), slice(pad, train.shape[-1] - pad)
    n_fsd = sizes["n_fsd"]
    model = GenerativeScattering(J=J, n_components=sizes["n_components"], epochs=sizes["epochs"], prior=prior,
                                 prior_components=n_mixture, random_state=random_state, checkpoint=checkpoint,
                                 progress=progress, device=device).fit(train)
    n_eval = min(len(train), 2000)
    rec_train = model.reconstruct(train[:n_eval]).cpu()
    rec_test = model.reconstruct(test).cpu()
    metrics: dict[str, Any] = {
        "dataset": dataset,
        "n_train": len(train),
        "n_test": len(test),
        "image_shape": list(train.shape[1:]),
        "J": J,
        "n_components": sizes["n_components"],
        "epochs": sizes["epochs"],
        "random_state": random_state,
        "loss": model.loss,
        "prior": prior,
        "prior_components": model.prior_components if prior == "mixture" else None,
        "batch_size": model.batch_size,
        "psnr_train": float(psnr(rec_train[:, c0, c1], train[:n_eval, c0, c1]).mean()),
        "psnr_test": float(psnr(rec_test[:, c0, c1], test[:, c0, c1]).mean()),
        "fit_seconds": model.train_seconds_,
        "prior_seconds": model.prior_seconds_,
        "generator_parameters": sum(p.numel() for p in model.decoder_.parameters()),
        "final_train_loss": model.history_[-1] if model.history_ else None,
    }
    metrics["psnr_gap"] = metrics["psnr_train"] - metrics["psnr_test"]

    # Baselines, each sampled as many times as the model, with the same mini-batch size.
    samples = model.sample(n_fsd, random_state=random_state + 1).cpu()
    gauss = GaussianPixelSampler().fit(train).sample(n_fsd, random_state=random_state + 2)
    latent = max(8, min(128, sizes["n_components"] // 2))
    vae = train_vae(train, epochs=vae_epochs, n_blocks=J, latent_dim=latent, batch_size=model.batch_size,
                    random_state=random_state, checkpoint=vae_checkpoint, progress=progress, device=device)
    vae_samples = vae.sample(n_fsd, random_state=random_state + 3).cpu()

    def embed(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model.encode(images[i : i + 500]).cpu() for i in range(0, len(images), 500)])

    test_codes = embed(test)  # embedded once, shared by every FSD below
    # Which model of the embedding generalises: the mean log-density of the held-out codes (nats per image).
    metrics.update(prior_test_loglik=code_log_likelihood(model.prior_, test_codes),
                   gaussian_test_loglik=code_log_likelihood(None, test_codes))
    metrics.update(
        fsd_samples=frechet_distance(embed(samples), test_codes),
        fsd_gaussian_baseline=frechet_distance(embed(gauss), test_codes),
        fsd_vae_baseline=frechet_distance(embed(vae_samples), test_codes),
        # Reference floor: held-out real images against the test set.
        fsd_train_images=frechet_distance(embed(train[-n_fsd:]), test_codes),
        vae_parameters=sum(p.numel() for p in vae.parameters()),
        vae_latent_dim=latent,
        vae_epochs=vae_epochs,
        vae_seconds=vae.train_seconds_,
    )
    metrics.update(_sample_scores(dataset, train, test, pad, random_state,
                                  {"": samples, "_vae": vae_samples, "_gaussian": gauss, "_train": train[-n_fsd:],
                                   "_test": test}))

    # Interpolations between test images: ours vs linear blending in pixel space.
    steps, n_pairs = 9, 8
    pairs = torch.randint(len(test), (n_pairs, 2), generator=torch.Generator().manual_seed(random_state + 4))
    stats: dict[str, list[float]] = {}
    paths, blends = [], []
    reference = train[: min(len(train), 5000)]
    for a, b in pairs.tolist():
        ours = model.interpolate(test[a], test[b], steps).cpu()
        t = torch.linspace(0, 1, steps)[:, None, None]
        blend = (1 - t) * test[a] + t * test[b]
        paths.append(ours)
        blends.append(blend)
        for name, p in (("interp", ours), ("blend", blend)):
            for key, val in path_smoothness(p, reference).items():
                stats.setdefault(f"{name}_{key}", []).append(val)
    metrics.update({k: float(np.mean(v)) for k, v in stats.items()})

    # Coarse-to-fine refinement of test images.
    n_ref, n_real = 4, 6
    coarse = model.coarse(test[:n_ref])
    refined = model.refine(coarse, n_real, random_state=random_state + 5)
    # Relative mismatch between the realizations' blur and the coarse input.
    metrics["refine_lowpass_error"] = float(
        (model.coarse(refined) - coarse[:, None]).norm() / coarse[:, None].expand_as(refined).norm()
    )
    coarse, refined = coarse.cpu(), refined.cpu()

    _save_grid(out / "reconstructions.png",
               [train[:10, c0, c1], rec_train[:10, c0, c1], test[:10, c0, c1], rec_test[:10, c0, c1]],
               ["train", "reconstr.", "test", "reconstr."],
               f"{dataset}: PSNR train {metrics['psnr_train']:.1f} dB, test {metrics['psnr_test']:.1f} dB")
    rows, labels = [], []
    for ours, blend in list(zip(paths, blends))[:4]:
        rows += [ours[:, c0, c1], blend[:, c0, c1]]
        labels += ["scattering", "blending"]
    _save_grid(out / "interpolations.png", rows, labels, "interpolation in whitened scattering space vs pixel blending")
    _save_grid(out / "samples.png",
               [samples[i * 10 : (i + 1) * 10, c0, c1] for i in range(3)]
               + [gauss[:10, c0, c1], vae_samples[:10, c0, c1]],
               ["ours", "ours", "ours", "Gaussian", "VAE"],
               f"samples; FSD ours {metrics['fsd_samples']:.1f}, Gaussian {metrics['fsd_gaussian_baseline']:.1f}, "
               f"VAE {metrics['fsd_vae_baseline']:.1f}; sample score ours {metrics['sample_score']:.2f}, "
               f"VAE {metrics['sample_score_vae']:.2f}, real {metrics['sample_score_train']:.2f}")
    rows = [torch.cat([test[i : i + 1], coarse[i : i + 1], refined[i]]).clamp(0, 1)[:, c0, c1] for i in range(n_ref)]
    _save_grid(out / "refinements.png", rows, [f"test {i}" for i in range(n_ref)],
               "original, coarse input, then coarse-to-fine realizations")
    metrics["figures"] = ["reconstructions.png", "interpolations.png", "samples.png", "refinements.png"]
    metrics["seconds"] = time.perf_counter() - t_start
    write_metrics(out, metrics)
    return metrics
