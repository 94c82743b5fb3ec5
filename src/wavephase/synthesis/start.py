"""Where a microcanonical synthesis starts, and the map its optimiser works through.

:func:`~wavephase.synthesis.maxent.synthesize` optimises ``y`` and evaluates the
moments of ``x = field(y)``: the spectral colouring by the targets' amplitude
spectrum (:func:`preconditioner`), then the exact coarse-scale constraint
(:func:`parametrisation`), from standardised white noise (:func:`initial_noise`).
"""

from __future__ import annotations

from typing import Callable

import torch

from wavephase.harmonics.spectrum import power_spectrum_2d
from wavephase.synthesis.coarse import condition

__all__ = ["initial_noise", "parametrisation", "preconditioner"]

# Power floor of the preconditioner, relative to the mean power: far below float32 round-off
# (~1e-15 of the mean power), so that wavenumbers where the targets hold no power (a dealiased
# simulation's dissipation range and corners) stay as empty as theirs. A floor of 1e-6 filled
# them with 5.6e-6 where the truth holds 3.6e-15 (128x128 vorticity): power-spectrum error 5.96
# against the Gaussian model's 0.34 (issue 22).
_PRECONDITION_FLOOR = 1e-30


def preconditioner(ts: torch.Tensor, fix_mean: bool) -> torch.Tensor:
    """Amplitude spectrum of the standardised targets (unit mean power).

    With ``fix_mean``, the zero wavenumber is left out: every sample's mean is
    then exactly the targets' (as the Gaussian model's is), a constraint of the
    model that L-BFGS would otherwise only approach; ``match="each"`` needs it free.

    Parameters
    ----------
    ts : torch.Tensor
        Standardised target fields.
    fix_mean : bool
        Zero the colouring at the zero wavenumber.

    Returns
    -------
    torch.Tensor
        The colouring filter, in ``ts``'s dtype.

    Shapes
    ------
    ts: (n, M, N) -> (M, N)
    """
    power = power_spectrum_2d(ts.double())
    colour = (power + _PRECONDITION_FLOOR * power.mean()).sqrt()
    # wavenumbers holding only the targets' round-off stay empty: the samples' own round-off fills them alike
    colour[power <= torch.finfo(ts.dtype).eps ** 2 * power.mean()] = 0.0
    colour = colour / colour.square().mean().sqrt()
    colour[0, 0] = 0.0 if fix_mean else 1.0
    return colour.to(ts)


def parametrisation(colour: torch.Tensor | None, low: torch.Tensor | None, factor: int
                     ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map ``y -> x`` that L-BFGS optimises through: spectral colouring, then the coarse constraint.

    Parameters
    ----------
    colour : torch.Tensor or None
        Filter of :func:`preconditioner` (None: no colouring).
    low : torch.Tensor or None
        Lifted coarse field the samples' low frequencies are held to (None: free).
    factor : int
        Coarse-graining factor of ``low``.

    Returns
    -------
    callable
        ``field(y)``, differentiable.

    Shapes
    ------
    y: (n, M, N) -> (n, M, N)
    """
    def field(y: torch.Tensor) -> torch.Tensor:
        if colour is not None:
            y = torch.fft.ifft2(torch.fft.fft2(y) * colour).real
        return y if low is None else condition(y, low, factor)
    return field


def initial_noise(random_state: int, n_samples: int, shape: tuple[int, int], match: str
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Standardised white noise and, for ``match="sign"``, the samples' random signs.

    Parameters
    ----------
    random_state : int
        Seed of a private generator.
    n_samples : int
        Number of fields.
    shape : (int, int)
        Field size ``(M, N)``.
    match : str
        The synthesis' ``match``; signs are drawn for ``"sign"`` only.

    Returns
    -------
    noise : torch.Tensor
        Float64 noise, each field of mean 0 and variance 1.
    signs : torch.Tensor or None
        ``+-1`` per sample.

    Shapes
    ------
    -> (n_samples, M, N), (n_samples, 1, 1)
    """
    gen = torch.Generator().manual_seed(random_state)
    noise = torch.randn(n_samples, *shape, generator=gen, dtype=torch.float64)
    noise = (noise - noise.mean((-2, -1), keepdim=True)) / noise.std((-2, -1), unbiased=False, keepdim=True)
    # drawn after the noise so that the noise does not depend on match
    signs = (2.0 * torch.randint(0, 2, (n_samples, 1, 1), generator=gen, dtype=torch.float64) - 1.0
             if match == "sign" else None)
    return noise, signs
