"""The two-level moment of a field's pixel values, and the continuation that enforces it.

Pearson's inequality bounds the kurtosis of any distribution by its skewness,
``kurt >= skew^2 + 1``, with equality exactly for distributions on two values.
Its gap ``g = kurt - skew^2 - 1`` is a moment of the one-point distribution like
the ``marginal`` family of :class:`~wavephase.harmonics.PhaseHarmonicStatistics`,
but one that vanishes for spins whatever their magnetisation, and whose square
root grows linearly with the spread of the values about their two levels
(``g ~ 4 var(delta)`` for values ``+-(1 + delta)``), so that a squared mismatch of
``sqrt(g)`` is quadratic in that spread rather than quartic.

From white noise, wavelet moments alone leave a synthesis of a two-valued field
(Ising spins) grey: their gradients barely see the one-point distribution. A
large weight on ``sqrt(g)`` from the start freezes the noise into domains
instead. :func:`~wavephase.synthesis.synthesize` therefore first matches the
moments, then adds the term with growing weights (``two_level``), each stage
from the previous one's result, the continuation of a penalty method.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from wavephase.harmonics.families import pixel_moments
from wavephase.harmonics.moments import root

__all__ = ["STAGE_STEPS", "check_two_level", "pearson_gap", "two_level_loss"]

#: L-BFGS iterations per stage by default (ising-128-one: 357 iterations in its four stages, some stalling sooner).
STAGE_STEPS = 100


def pearson_gap(x: torch.Tensor) -> torch.Tensor:
    """The gap ``kurt - skew^2 - 1`` of each field's pixel values (0 exactly for two values).

    Parameters
    ----------
    x : torch.Tensor
        Real fields, not constant.

    Returns
    -------
    torch.Tensor
        Non-negative up to rounding.

    Shapes
    ------
    x: (B, M, N) -> (B,)
    """
    _, var, marginal = pixel_moments(x, None, marginal=True)  # about each field's own mean
    skew = marginal[:, 0] / var.pow(1.5)
    kurt = marginal[:, 1] / var.square()
    return kurt - skew.square() - 1


def two_level_loss(x: torch.Tensor, target_gap: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight * sum_i (sqrt(g(x_i)) - sqrt(g_target))^2``, the term added to a synthesis' loss.

    Parameters
    ----------
    x : torch.Tensor
        Fields being synthesised.
    target_gap : torch.Tensor
        Scalar :func:`pearson_gap` of the targets (averaged over them).
    weight : float
        Weight of the term.

    Returns
    -------
    torch.Tensor
        Scalar.

    Shapes
    ------
    x: (B, M, N) -> ()
    """
    return weight * (root(pearson_gap(x)) - root(target_gap.to(x.dtype))).square().sum()


def check_two_level(weights: Sequence[float] | None, stage_steps: int = STAGE_STEPS) -> tuple[float, ...]:
    """The weights of the continuation stages, checked.

    Parameters
    ----------
    weights : sequence of float or None
        Positive finite weights, one per stage (None or empty: no stage).
    stage_steps : int
        L-BFGS iterations per stage (positive when there are stages).

    Returns
    -------
    tuple of float
        The weights.

    Raises
    ------
    ValueError
        Naming the argument and what it accepts.
    """
    if weights is None:
        return ()
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ValueError(f"two_level must be a sequence of positive weights, e.g. (0.01, 0.1, 1, 10), got "
                         f"{weights!r}.")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 < w < math.inf):
            raise ValueError(f"two_level holds {w!r}; each stage's weight must be a positive finite number.")
        out.append(float(w))
    if out and (isinstance(stage_steps, bool) or not isinstance(stage_steps, int) or stage_steps < 1):
        raise ValueError(f"two_level_steps must be a positive int (iterations per stage), got {stage_steps!r}.")
    return tuple(out)
