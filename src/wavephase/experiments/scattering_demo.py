"""Scattering of a real image: filters, coefficients and deformation stability, as figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavephase.data.images import load_image, sample_image
from wavephase.experiments.outputs import prepare_output_dir, write_metrics
from wavephase.filters import morlet_bank
from wavephase.metrics.deformation import deformation_ratios, fourier_modulus
from wavephase.scattering.scattering2d import Scattering2D
from wavephase.validation import check_device, check_image_shape, check_positive_int, check_random_state

__all__ = ["run_scattering_demo"]


def _plot_filters(bank, path: Path) -> None:
    import matplotlib.pyplot as plt

    J, L = bank.J, bank.L
    spatial = torch.fft.fftshift(torch.fft.ifft2(bank.psi.to(torch.complex128)), dim=(-2, -1))
    M, N = bank.shape
    crop = min(M, N, 6 * 2**J) // 2
    c1, c2 = M // 2, N // 2
    fig, axes = plt.subplots(J, L, figsize=(1.3 * L, 1.3 * J), squeeze=False)
    for j in range(J):
        for l in range(L):
            ax = axes[j, l]
            patch = spatial[j, l, c1 - crop:c1 + crop, c2 - crop:c2 + crop].real.numpy()
            vmax = float(np.abs(patch).max())
            ax.imshow(patch, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_title(f"θ={float(bank.theta[l]) / np.pi:.2f}π", fontsize=7)
        axes[j, 0].set_ylabel(f"j={j}", fontsize=8)
    fig.suptitle("Morlet wavelets (real part), scales j and angles θ", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_coefficients(image: np.ndarray, s: torch.Tensor, J: int, L: int, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, J + 1, figsize=(2.4 * (J + 1), 2.6))
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("input", fontsize=9)
    for j in range(J):
        # order 1, summed over angles: energy of the image at scale 2^j, averaged over 2^J
        amap = s[1 + j * L:1 + (j + 1) * L].sum(0).numpy()
        axes[j + 1].imshow(amap, cmap="magma")
        axes[j + 1].set_title(f"order 1, j={j} (sum over θ)", fontsize=8)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_deformation(ratios: dict[str, list[float]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    g = ratios["max_gradient"]
    ax.loglog(g, ratios["scattering"], "o-", label="scattering")
    ax.loglog(g, ratios["fourier modulus"], "s-", label="Fourier modulus")
    ax.loglog(g, np.array(g) * ratios["scattering"][-1] / g[-1], "k:", label="slope 1")
    ax.set_xticks(g, [f"{v:g}" for v in g])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("‖∇τ‖∞")
    ax.set_ylabel("‖Φ(x_τ) − Φ(x)‖ / ‖x‖")
    ax.legend(fontsize=8)
    ax.set_title("Deformation stability", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_scattering_demo(out_dir: str | Path, image: str = "grace_hopper", size: int = 256, J: int = 4,
                        L: int = 8, *, random_state: int = 0, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Scatter a real image and write figures and ``metrics.json`` to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created).
    image : str
        A sample image name (``"grace_hopper"``, ``"terrain"``) or a path to an image file.
    size : int
        Side of the square image analysed.
    J, L : int
        Scales and orientations.
    random_state : int
        Seed of the random smooth deformations of the stability study.
    device : str or torch.device
        Where the timed scattering runs (``"cpu"``, ``"cuda"``); the deformation
        study runs on the CPU, in float64.

    Returns
    -------
    dict
        Metrics (settings, output shape, timings, Littlewood-Paley bounds,
        deformation ratios) and ``"figures"``, the PNG file names written.
    """
    size = check_positive_int(size, "size")
    check_image_shape((size, size), J, "(size, size)")
    L = check_positive_int(L, "L")
    random_state = check_random_state(random_state)
    device = check_device(device)
    out = prepare_output_dir(out_dir)
    is_file = Path(image).suffix != "" or Path(image).exists()
    img = load_image(image, size) if is_file else sample_image(image, size)
    x = torch.from_numpy(img).double()

    start = time.perf_counter()
    S = Scattering2D(J, (size, size), L=L).to(device)
    build_seconds = time.perf_counter() - start
    with torch.no_grad():
        start = time.perf_counter()
        coeffs = S(x.float().to(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the kernels run asynchronously
        forward_seconds = time.perf_counter() - start
        coeffs = coeffs.cpu()

    bank = morlet_bank((size, size), J, L, dtype=torch.float64)
    lp = bank.littlewood_paley()
    # Deformations act on a windowed image, so that border effects do not dominate.
    window = torch.outer(torch.hann_window(size, periodic=False, dtype=torch.float64),
                         torch.hann_window(size, periodic=False, dtype=torch.float64))
    xw = (x - x.mean()) * window
    S64 = Scattering2D(J, (size, size), L=L, dtype=torch.float64)
    ratios = deformation_ratios(xw, {"scattering": S64, "fourier modulus": fourier_modulus},
                                [0.0025, 0.005, 0.01, 0.02, 0.04], seed=random_state)

    figures = {"wavelets": "scattering_wavelets.png", "coefficients": "scattering_coefficients.png",
               "deformation": "scattering_deformation.png"}
    _plot_filters(bank, out / figures["wavelets"])
    _plot_coefficients(img, coeffs, J, L, out / figures["coefficients"])
    _plot_deformation(ratios, out / figures["deformation"])
    metrics = {
        "image": image, "size": size, "J": J, "L": L, "random_state": random_state, "device": str(device),
        "channels": S.output_channels, "output_shape": list(coeffs.shape),
        "build_seconds": build_seconds, "forward_seconds": forward_seconds,
        "littlewood_paley_min": float(lp.min()), "littlewood_paley_max": float(lp.max()),
        "deformation": ratios, "figures": figures,
    }
    write_metrics(out, metrics)
    return metrics
