"""Scattering covariance ("scattering spectra") of stationary 2D fields, reduced version.

After Cheng, Morel, Allys, Ménard and Mallat (2023). With ``z_l = x * psi_l``
(Morlet wavelets, ``l = (j, theta)``), ``P_l = <|z_l|^2>`` the reference wavelet
power and ``<.>`` the spatial mean, the families are

========  ====================================================================  =========================
family    moment                                                                count
========  ====================================================================  =========================
``mean``  ``<x> / sigma``, ``Var(x) / sigma^2``                                 2
``S1``    ``<|z_l|> / sqrt(P_l)`` (sparsity)                                    ``J L``
``S2``    ``<|z_l|^2> / P_l`` (power spectrum per wavelet)                      ``J L``
``S3``    ``Cov(z_{l1}, |z_{l2}| * psi_{l1}) / sqrt(P_l1 P_l2)``, ``j2 <= j1``  ``J (J + 1) / 2 L^2``
``S4``    ``Cov(|z_{l3}| * psi_{l1}, |z_{l2}| * psi_{l1}) / sqrt(P_l2 P_l3)``   ``#(j3 <= j2 <= j1) L^2``
========  ====================================================================  =========================

Reduction (documented, deliberate): ``S4`` keeps only ``theta_2 = theta_3``
(the two moduli at the same orientation, any ``theta_1``), which divides its
size by ``L``; no further compression (e.g. the paper's isotropic or
scale-invariant projections) is applied.

Every covariance is computed by Parseval's identity in the Fourier domain,
``<a conj(b)> = sum_k a^(k) conj(b^(k)) / (M N)^2``, so that ``|z| * psi`` is
never formed in space: ``S3`` is the contraction of ``x^ conj(|z_l2|^)`` with
``|psi_l1^|^2`` over frequencies, one matrix product for all pairs. Wavelets
have zero mean, so these moments are covariances.
"""

from __future__ import annotations

import torch

from wavephase.harmonics.moments import MomentStatistics, cross_scale_power

__all__ = ["ScatteringCovariance"]


class ScatteringCovariance(MomentStatistics):
    """Reduced scattering covariance moments (see the module docstring).

    Same interface as :class:`~wavephase.harmonics.statistics.PhaseHarmonicStatistics`
    (both are :class:`~wavephase.harmonics.moments.MomentStatistics`):
    :meth:`set_reference`, :meth:`forward` (dict of normalised families), :meth:`loss`.

    Parameters
    ----------
    shape, J, L, dtype, memory_limit
        Field size, scales, orientations, filter dtype and memory guard, as for
        :class:`~wavephase.harmonics.moments.MomentStatistics`.

    Shapes
    ------
    x: (..., M, N) real -> dict family -> (..., n_f) complex
    """

    families = ("mean", "S1", "S2", "S3", "S4")

    def __init__(self, shape: tuple[int, int], J: int, L: int = 8, *, dtype: torch.dtype = torch.float32,
                 memory_limit: int | float | str | None = None) -> None:
        super().__init__(shape, J, L, dtype=dtype, memory_limit=memory_limit)
        # |psi^|^2 flattened: (J L, M N), the frequency weights of every covariance
        self.register_buffer("weights", self.psi.square().reshape(self.J * self.L, -1).clone(), persistent=False)
        self.pairs = [(j2, j1) for j2 in range(self.J) for j1 in range(j2, self.J)]
        self.triples = [(j3, j2, j1) for j3 in range(self.J) for j2 in range(j3, self.J) for j1 in range(j2, self.J)]

    def family_sizes(self) -> dict[str, int]:
        """Number of (complex) moments per family, for one field.

        Returns
        -------
        dict
            Family name -> count.
        """
        J, L = self.J, self.L
        return {"mean": 2, "S1": J * L, "S2": J * L, "S3": len(self.pairs) * L * L,
                "S4": len(self.triples) * L * L}

    def _planes(self, gradient: bool = True) -> int:
        # The moduli of every pair of scales in the Fourier domain dominate, with or without a
        # graph (measured: 465 of these 504 planes for the moments alone, 256 x 256, J=6, L=8).
        return 3 * (self.J + len(self.pairs)) * self.L

    def _contract(self, spectra: torch.Tensor) -> torch.Tensor:
        """``sum_k spectra(k) |psi_l^(k)|^2 / (M N)^2`` for every wavelet ``l``: (B, P, MN) -> (B, P, J L)."""
        M, N = self.shape
        weights = self.weights.to(spectra.real.dtype)
        out = torch.einsum("bpkc,mk->bpmc", torch.view_as_real(spectra), weights) / float(M * N) ** 2
        return torch.view_as_complex(out.contiguous())

    def raw_moments(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The families ``mean``, ``S1``-``S4`` before normalisation, the power and the variance.

        See :meth:`MomentStatistics.raw_moments <wavephase.harmonics.moments.MomentStatistics.raw_moments>`;
        the variance is about each field's own mean.

        Shapes
        ------
        x: (B, M, N) -> dict of (B, n_f), (B, J, L), (B,)
        """
        B = x.shape[0]
        J, L = self.J, self.L
        xf = torch.fft.fft2(x)
        z = torch.fft.ifft2(xf[:, None, None] * self.psi.to(x.dtype))  # (B, J, L, M, N)
        a = z.abs()
        power = a.square().mean((-2, -1))
        s1 = a.mean((-2, -1))
        af = torch.fft.fft2(a).flatten(-2)  # (B, J, L, MN)
        # S3: x^ conj(|z_{j2,l2}|^), weighted by |psi_{j1,l1}^|^2
        cross = (xf.flatten(-2)[:, None, None] * af.conj()).reshape(B, J * L, -1)
        s3_all = self._contract(cross).reshape(B, J, L, J, L)  # (B, j2, l2, j1, l1)
        s3 = torch.stack([s3_all[:, j2, :, j1, :] for j2, j1 in self.pairs], 1)  # (B, P, l2, l1)
        # S4 with l2 = l3: |z_{j3,l}|^ conj(|z_{j2,l}|^), weighted by |psi_{j1,l1}^|^2
        prods = torch.stack([af[:, j3] * af[:, j2].conj() for j3, j2 in self.pairs], 1)  # (B, P, L, MN)
        s4_all = self._contract(prods.reshape(B, len(self.pairs) * L, -1)).reshape(B, len(self.pairs), L, J, L)
        index = {p: i for i, p in enumerate(self.pairs)}
        s4 = torch.stack([s4_all[:, index[(j3, j2)], :, j1, :] for j3, j2, j1 in self.triples], 1)
        mean = x.mean((-2, -1))
        var = x.var((-2, -1), unbiased=False)
        dt = z.dtype
        moments = {"mean": torch.stack([mean, var], -1).to(dt), "S1": s1.to(dt), "S2": power.to(dt),
                   "S3": s3, "S4": s4}
        return moments, power, var

    def _normalise_families(self, moments: dict[str, torch.Tensor], power: torch.Tensor, root_power: torch.Tensor,
                            sigma: torch.Tensor, own: bool) -> dict[str, torch.Tensor]:
        B = power.shape[0]
        out = {"S1": (moments["S1"] / root_power).reshape(B, -1), "S2": (moments["S2"] / power).reshape(B, -1)}
        pairs = cross_scale_power(root_power, [p[0] for p in self.pairs], [p[1] for p in self.pairs])
        out["S3"] = (moments["S3"] / pairs).reshape(B, -1)
        # S4 keeps theta_2 = theta_3: the diagonal of the pair normalisation, for every theta_1
        t3 = torch.tensor([t[0] for t in self.triples], device=power.device)
        t2 = torch.tensor([t[1] for t in self.triples], device=power.device)
        out["S4"] = (moments["S4"] / (root_power[:, t3] * root_power[:, t2])[..., None]).reshape(B, -1)
        return out

    def extra_repr(self) -> str:
        """Configuration summary."""
        return f"shape={self.shape}, J={self.J}, L={self.L}, n_moments={sum(self.family_sizes().values())}"
