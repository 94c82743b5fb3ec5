"""Baselines for generative scattering networks: a Gaussian of pixels and a convolutional VAE.

Both are trained on the same images as :class:`~wavephase.models.generative.GenerativeScattering`
and sampled as many times, so that the Fréchet scattering distance compares like with like.
The VAE's decoder has the architecture of ours, fed by a learned latent code instead of a
fixed scattering embedding; it trains for a fixed number of epochs, so a run is reproducible.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from torch import nn

from wavephase.models._training import train_epochs
from wavephase.models.decoder import ScatteringDecoder
from wavephase.runs import Checkpoint
from wavephase.validation import check_device, check_images, check_positive_int, check_random_state

__all__ = ["GaussianPixelSampler", "ConvVAE", "train_vae"]


class GaussianPixelSampler(BaseEstimator):
    """Baseline: a Gaussian fitted to pixels (PCA), sampled and clipped to the data range.

    Parameters
    ----------
    n_components : int, optional
        Principal components kept; default all (full covariance).

    Attributes
    ----------
    mean_ : torch.Tensor
        Mean image, flattened (float64).
    components_ : torch.Tensor
        Principal axes scaled by their standard deviations (float64).
    image_shape_ : (int, int)
    data_range_ : (float, float)
        Minimum and maximum training pixel; samples are clipped to it.

    Shapes
    ------
    X: (n, M, N); sample -> (n, M, N) float32
    """

    def __init__(self, n_components: int | None = None) -> None:
        self.n_components = n_components

    def fit(self, X: Any, y: Any = None) -> "GaussianPixelSampler":
        """Fit mean and principal axes of the pixel distribution.

        Parameters
        ----------
        X : array-like
            Training images, at least two.
        y : ignored

        Returns
        -------
        GaussianPixelSampler
            ``self``.

        Shapes
        ------
        X: (n, M, N)
        """
        images = check_images(X, "X")
        n_pixels = images.shape[1] * images.shape[2]
        k = n_pixels if self.n_components is None else check_positive_int(self.n_components, "n_components")
        if k > n_pixels:
            raise ValueError(f"n_components={k} exceeds the number of pixels ({n_pixels}); lower it or pass None.")
        if len(images) < 2:
            raise ValueError(f"X must hold at least 2 images to estimate a covariance, got {len(images)}.")
        x = torch.as_tensor(images).double()
        flat = x.flatten(1)
        evals, evecs = torch.linalg.eigh(torch.cov(flat.T))
        self.mean_ = flat.mean(0)
        self.components_ = evecs[:, -k:] * evals[-k:].clamp_min(0).sqrt()
        self.image_shape_ = (int(x.shape[1]), int(x.shape[2]))
        self.data_range_ = (float(x.min()), float(x.max()))
        return self

    def sample(self, n: int, random_state: int = 0) -> torch.Tensor:
        """Draw ``n`` images from the fitted Gaussian.

        ``random_state`` seeds the draw; ``n = 0`` gives an empty batch.

        Returns
        -------
        torch.Tensor
            float32 images, clipped to the training range.

        Shapes
        ------
        -> (n, M, N)
        """
        if not hasattr(self, "mean_"):
            raise NotFittedError("this GaussianPixelSampler is not fitted yet; call fit(X) before sample.")
        n = check_positive_int(n, "n", minimum=0)
        gen = torch.Generator().manual_seed(check_random_state(random_state))
        eps = torch.randn(n, self.components_.shape[1], generator=gen, dtype=torch.float64)
        x = self.mean_ + eps @ self.components_.T
        return x.view(n, *self.image_shape_).clamp(*self.data_range_).float()


class ConvVAE(nn.Module):
    """Baseline: small convolutional VAE (Bernoulli likelihood, images in [0, 1]).

    The decoder is a :class:`~wavephase.models.decoder.ScatteringDecoder` fed by a
    latent code; the encoder mirrors it with stride-2 convolutions.

    Parameters
    ----------
    shape : (int, int)
        Image size, divisible by ``2**n_blocks``.
    n_blocks : int
        Down/upsampling blocks.
    latent_dim : int
        Latent dimension.
    channels : sequence of int, optional
        Decoder channels (the encoder mirrors them).

    Shapes
    ------
    x: (n, M, N) -> logits (n, M, N), mu (n, latent_dim), logvar (n, latent_dim)
    """

    def __init__(self, shape: tuple[int, int], n_blocks: int, latent_dim: int = 64,
                 channels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.decoder = ScatteringDecoder(latent_dim, shape, n_blocks, channels)
        # The decoder's blocks output channels[1:] + [channels[-1]]; the encoder goes back through them.
        dec = self.decoder.channels
        layers: list[nn.Module] = []
        c_in = 1
        for c in reversed([*dec[1:], dec[-1]]):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * math.prod(self.decoder.start), 2 * latent_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance.

        Shapes
        ------
        x: (n, M, N) -> mu (n, latent_dim), logvar (n, latent_dim)
        """
        mu, logvar = self.head(self.encoder(x[:, None])).chunk(2, dim=-1)
        return mu, logvar

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised reconstruction logits with the posterior parameters.

        Parameters
        ----------
        x : torch.Tensor
            Images.
        generator : torch.Generator, optional
            CPU generator of the reparameterisation noise (default torch's global one).

        Shapes
        ------
        x: (n, M, N) -> logits (n, M, N), mu (n, latent_dim), logvar (n, latent_dim)
        """
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        return self.decoder(mu + eps * (0.5 * logvar).exp()), mu, logvar

    def sample(self, n: int, random_state: int = 0) -> torch.Tensor:
        """Decode ``n`` draws of the prior ``N(0, I)``, seeded by ``random_state``, into images in [0, 1].

        Shapes
        ------
        -> (n, M, N); ``n = 0`` gives an empty batch
        """
        n = check_positive_int(n, "n", minimum=0)
        gen = torch.Generator().manual_seed(check_random_state(random_state))
        z = torch.randn(n, self.latent_dim, generator=gen)
        self.eval()
        with torch.no_grad():
            return torch.sigmoid(self.decoder(z.to(next(self.parameters()).device)))


def train_vae(
    images: Any,
    *,
    epochs: int,
    n_blocks: int,
    latent_dim: int = 64,
    channels: Sequence[int] | None = None,
    batch_size: int = 128,
    lr: float = 2e-3,
    random_state: int = 0,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> ConvVAE:
    """Train a :class:`ConvVAE` with Adam for a fixed number of epochs.

    The same arguments give the same model (at a fixed number of torch threads):
    initialisation, batch order and reparameterisation noise all derive from
    ``random_state``.

    Parameters
    ----------
    images : array-like
        Training images in [0, 1], at least two.
    epochs : int
        Passes over the training images.
    n_blocks, latent_dim, channels :
        Architecture (see :class:`ConvVAE`).
    batch_size, lr, random_state :
        Optimisation settings and seed.
    checkpoint : path-like, optional
        File to checkpoint to after every epoch and resume from (see :class:`wavephase.runs.Checkpoint`).
    progress : bool
        Show a progress bar.
    device : str or torch.device
        Torch device to train on.

    Returns
    -------
    ConvVAE
        The trained model, in eval mode, with ``epochs_``, ``history_`` (mean
        loss per epoch) and ``train_seconds_`` (summed over resumed runs).

    Shapes
    ------
    images: (n, M, N)
    """
    x = torch.as_tensor(check_images(images, "images"), dtype=torch.float32)
    epochs = check_positive_int(epochs, "epochs", minimum=0)
    batch_size = check_positive_int(batch_size, "batch_size")
    random_state = check_random_state(random_state)
    device = check_device(device)
    if len(x) < 2:
        raise ValueError(f"images must hold at least 2 images, got {len(x)}.")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError("images must lie in [0, 1] for the Bernoulli VAE; rescale them.")
    t_start = time.perf_counter()
    config = {"epochs": epochs, "n_blocks": n_blocks, "latent_dim": latent_dim, "channels": channels,
              "batch_size": batch_size, "lr": lr, "random_state": random_state}
    ckpt = Checkpoint(checkpoint, config, x, what="VAE checkpoint")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        vae = ConvVAE((x.shape[1], x.shape[2]), n_blocks, latent_dim, channels).to(device)
    gen = torch.Generator().manual_seed(random_state)  # batch order and reparameterisation noise
    x = x.to(device)

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        xb = x[idx]
        logits, mu, logvar = vae(xb, generator=gen)
        rec = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp())
        return (rec + kl) / len(xb)

    history, seconds = train_epochs(vae, batch_loss, len(x), epochs=epochs, batch_size=batch_size,
                                    optimizer=torch.optim.Adam(vae.parameters(), lr=lr), generator=gen,
                                    checkpoint=ckpt, state=ckpt.load() or {"epoch": 0, "history": [], "seconds": 0.0},
                                    t_start=t_start, progress=progress, desc="vae")
    vae.epochs_, vae.history_, vae.train_seconds_ = epochs, history, seconds
    return vae
