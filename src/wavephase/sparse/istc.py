"""Iterative Soft-Thresholding with homotopy Continuation (ISTC), Zarka et al. ICLR 2020.

An unrolled, differentiable non-negative ISTA whose dictionary is learned (atoms
kept at unit norm) and whose threshold decreases geometrically over the steps,
from the largest correlation ``λ₀ = max_k (Dᵀx)_k`` of each signal down to a
learned final ``λ*``. Starting high makes the first codes very sparse and the
homotopy reaches a good λ* solution in a handful of steps, which is what makes
the layer cheap enough to train end to end.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wavephase.sparse.ista import ista_step, lipschitz_constant, sparse_coding_report
from wavephase.validation import check_positive_int, check_real_tensor

__all__ = ["ISTC", "homotopy_lambdas"]


def homotopy_lambdas(lam0: torch.Tensor, lam_final: torch.Tensor, n_steps: int) -> list[torch.Tensor]:
    """Geometric homotopy schedule λ_n = λ₀ (λ*/λ₀)^{n/(N−1)}, n = 0 … N−1.

    Parameters
    ----------
    lam0 : torch.Tensor
        Starting thresholds, (...,) (one per signal).
    lam_final : torch.Tensor
        Final threshold λ*, broadcastable to ``lam0``.
    n_steps : int
        Number of steps N.

    Returns
    -------
    list of torch.Tensor
        N thresholds, each shaped like ``lam0``; the last equals λ* (when λ₀ > λ*).
    """
    lam0 = torch.maximum(lam0, lam_final)  # never start below the target
    if n_steps == 1:
        return [lam_final.expand_as(lam0)]
    ratio = lam_final / lam0
    # The gradient of lam0 ratio^t overflows when lam0 and lam* are far apart (huge signals); that of its
    # logarithmic form does not. The values stay those of lam0 ratio^t, the gradient is the logarithmic one.
    log0, log_final = lam0.log(), lam_final.log()
    out = []
    for n in range(n_steps):
        t = n / (n_steps - 1)
        smooth = torch.exp(log0 + t * (log_final - log0))
        out.append((lam0 * ratio ** t).detach() + (smooth - smooth.detach()))
    return out


class ISTC(nn.Module):
    """Unrolled non-negative sparse coding layer with a learned unit-norm dictionary.

    Parameters
    ----------
    in_features : int
        Signal dimension P.
    n_atoms : int
        Dictionary size K.
    n_steps : int
        Unrolled ISTA steps N.
    lam : float
        Initial final threshold λ*, relative to the signal scale (learned, kept positive).
    homotopy : bool
        Use the geometric λ schedule; if False every step uses λ*.
    generator : torch.Generator, optional
        Seeds the random dictionary initialisation.

    Notes
    -----
    Shapes: x (..., P) → z (..., K). ``reconstruct(z)`` gives (..., P).
    """

    def __init__(
        self,
        in_features: int,
        n_atoms: int,
        n_steps: int = 5,
        lam: float = 0.1,
        *,
        homotopy: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, "in_features")
        self.n_atoms = check_positive_int(n_atoms, "n_atoms")
        self.n_steps = check_positive_int(n_steps, "n_steps")
        if not lam > 0:
            raise ValueError(f"lam must be positive, got {lam}.")
        self.homotopy = bool(homotopy)
        weight = torch.randn(in_features, n_atoms, generator=generator)
        self.weight = nn.Parameter(weight / weight.norm(dim=0, keepdim=True))
        self.log_lam = nn.Parameter(torch.tensor(math.log(lam)))

    @property
    def dictionary(self) -> torch.Tensor:
        """Unit-norm atoms, (P, K); the normalisation is part of the graph so gradients respect it."""
        return self.weight / self.weight.norm(dim=0, keepdim=True).clamp_min(1e-12)

    @property
    def lam(self) -> torch.Tensor:
        """Final threshold λ* (positive scalar)."""
        return self.log_lam.exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse code of ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Signals, (..., P).

        Returns
        -------
        torch.Tensor
            Non-negative codes, (..., K).
        """
        check_real_tensor(x, "x", min_ndim=1)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have last dimension {self.in_features}, got {tuple(x.shape)}.")
        D = self.dictionary.to(x.dtype)
        L = lipschitz_constant(D.detach())
        lam_final = self.lam.to(x.dtype)
        # The correlations Dᵀx give both λ₀ and the first step, which from z = 0
        # reduces to ReLU((Dᵀx − λ₀)/L): one product instead of three.
        correlations = x @ D
        if self.homotopy:
            lams = homotopy_lambdas(correlations.detach().amax(dim=-1, keepdim=True), lam_final, self.n_steps)
        else:
            lams = [lam_final] * self.n_steps
        z = torch.relu((correlations - lams[0]) / L)
        for lam in lams[1:]:
            z = ista_step(z, x, D, lam, L)
        return z

    def reconstruct(self, z: torch.Tensor) -> torch.Tensor:
        """``Dz``. Shapes: (..., K) → (..., P)."""
        return z @ self.dictionary.to(z.dtype).T

    def report(self, x: torch.Tensor) -> dict[str, float]:
        """Sparsity and relative reconstruction error of the codes of ``x`` (see ``sparse_coding_report``)."""
        with torch.no_grad():
            z = self(x)
            return sparse_coding_report(x, self.dictionary.to(x.dtype), z, float(self.lam))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_atoms={self.n_atoms}, n_steps={self.n_steps}, homotopy={self.homotopy}"
