"""The grid computations of :class:`~wavephase.scattering.solid_harmonic3d.SolidHarmonicScattering3D`.

Each molecule of a chunk has its own box, centred in the chunk's common grid of
odd side; fields are zero outside it. The first layer is built from per-axis
Gaussian factors, the second by separable Hermite filters that also resample onto
a coarser grid (see the notes of :mod:`wavephase.scattering.solid_harmonic3d`).
Tensors of fields are laid out ``(B, L+1, nx, ny, C, nz)``: molecule, degree,
x, y, channel, z.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import torch

from wavephase.scattering.solid_harmonics import monomials, real_solid_harmonic_coefficients

__all__ = ["SafeEigenvectors", "axis_masks", "first_layer", "first_layer_bytes", "first_layer_tables",
           "flush_denormals", "hermite_filters", "integrals", "safe_power", "second_layer", "second_layer_bytes",
           "smooth_modulus"]


def smooth_modulus(energy: torch.Tensor, eps: float) -> torch.Tensor:
    """``sqrt(E)`` made smooth near 0: ``E / (sqrt(E + eps^2) + eps)``; exact sqrt if ``eps == 0``."""
    if eps > 0:
        return energy / (torch.sqrt(energy + eps * eps) + eps)
    positive = energy > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, energy, torch.ones_like(energy))),
                       torch.zeros_like(energy))


def safe_power(x: torch.Tensor, q: float) -> torch.Tensor:
    """``x^q`` for ``x >= 0`` with zero subgradient at 0 (cheap paths for q in {1, 2, 3})."""
    if q == 1:
        return x
    if q == 2:
        return x * x
    if q == 3:
        return x * x * x
    positive = x > 0
    safe = torch.where(positive, x, torch.ones_like(x))
    base = torch.sqrt(safe) if q == 0.5 else safe**q
    return torch.where(positive, base, torch.zeros_like(x))


class SafeEigenvectors(torch.autograd.Function):
    """Eigenvectors of symmetric ``(..., 3, 3)`` matrices whose gradient ignores degenerate pairs.

    The usual eigenvector gradient has ``1 / (lambda_i - lambda_j)`` factors; where two
    moments of inertia (nearly) coincide the frame is arbitrary within their plane, the
    output does not depend on it beyond quadrature error, and the pair's term is dropped.
    """

    @staticmethod
    def forward(ctx, matrix: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        evals, evecs = torch.linalg.eigh(matrix)
        ctx.save_for_backward(evals, evecs)
        return evecs

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        evals, evecs = ctx.saved_tensors
        gap = evals[..., None, :] - evals[..., :, None]  # lambda_j - lambda_i
        scale = evals.abs().amax(-1, keepdim=True)[..., None].clamp_min(1e-30)
        ok = gap.abs() > 1e-6 * scale
        inv = torch.where(ok, 1.0 / torch.where(ok, gap, torch.ones_like(gap)), torch.zeros_like(gap))
        inner = evecs.transpose(-1, -2) @ grad * inv
        out = evecs @ inner @ evecs.transpose(-1, -2)
        return (out + out.transpose(-1, -2)) / 2


def _start_parallel_workers() -> None:
    # An elementwise operation on enough elements for every thread (torch's grain is
    # 32768) makes the OpenMP team at the current thread count, once per process.
    torch.ones(32768 * (torch.get_num_threads() + 1)).mul_(2)


@contextlib.contextmanager
def flush_denormals(device: torch.device) -> Iterator[None]:
    """Flush denormal floats to zero on the CPU while active, then restore the previous mode.

    The Gaussian tails of the fields and filters underflow into the denormal range
    (below ~1e-38 in float32), where CPU arithmetic is tens of times slower; flushing
    them changes the coefficients by nothing measurable and makes the transform ~3x
    faster. The mode is per thread (the calling one); other threads are unaffected.

    A thread starts in the mode of the thread that creates it, so torch's OpenMP
    workers, made at the process's first parallel operation, would flush
    denormals for the rest of the process if that operation ran here; later
    results would then depend on what ran first. They are started before.
    """
    if device.type != "cpu":
        yield
        return
    _start_parallel_workers()
    # There is no getter for the mode: a denormal quotient that comes out as 0 means it is on.
    was_on = bool(torch.tensor(1e-30, dtype=torch.float32) / 1e10 == 0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


def axis_masks(k_own: torch.Tensor, shape: Sequence[int], dtype: torch.dtype) -> list[torch.Tensor]:
    """Per-axis 0/1 masks ``(B, n_d)`` of each molecule's own box ``|k_d| <= k_own[b, d]`` in a centred grid."""
    masks = []
    for d, n in enumerate(shape):
        k = torch.arange(n, device=k_own.device) - (n - 1) // 2
        masks.append((k.abs()[None] <= k_own[:, d, None]).to(dtype))
    return masks


def hermite_filters(n1: int, k2: int, h1: float, h2: float, s: float, order: int, dtype: torch.dtype,
                    device: torch.device) -> torch.Tensor:
    """1-D derivative-of-Gaussian filters from a fine centred grid to a coarse one.

    Entry ``a`` maps samples at ``t1 = h1 (i - (n1 - 1) / 2)`` to ``t2 = h2 k``,
    ``|k| <= k2``: ``h1 He_a(x) g_s(t2 - t1)`` with ``x = (t2 - t1) / s``, the 1-D
    normalised Gaussian ``g_s`` and the Hermite polynomials ``He_0 = 1``, ``He_1 = x``,
    ``He_{a+1} = x He_a - a He_{a-1}``. Since ``(-s d/dt)^a g_s = He_a(x) g_s``, the
    tensor product of entries ``a, b, c`` is the Riemann-sum convolution with
    ``s^{a+b+c} (-d/dx)^a (-d/dy)^b (-d/dz)^c g_s``.

    Returns
    -------
    torch.Tensor
        ``(order + 1, 2 k2 + 1, n1)``.
    """
    t1 = h1 * (torch.arange(n1, device=device, dtype=dtype) - (n1 - 1) // 2)
    t2 = h2 * torch.arange(-k2, k2 + 1, device=device, dtype=dtype)
    x = (t2[:, None] - t1[None, :]) / s
    g = torch.exp(-0.5 * x * x) * (h1 / (math.sqrt(2 * math.pi) * s))
    hermite = [torch.ones_like(x), x]
    for a in range(1, order):
        hermite.append(x * hermite[a] - a * hermite[a - 1])
    return torch.stack(hermite[: order + 1]) * g


def _xy_pairs(L: int) -> list[tuple[int, int]]:
    """Exponents ``(a, b)`` of the ``x^a y^b`` factors of degree <= L, by degree then descending ``a``."""
    return [(a, d - a) for d in range(L + 1) for a in range(d, -1, -1)]


def first_layer_tables(L: int) -> list[np.ndarray]:
    """Coefficients of ``R_l^m`` arranged for :func:`first_layer`, one table per degree.

    ``R_l^m(x, y, z) = sum_{g, p} table[m, g, p] x^a_p y^b_p z^g`` with ``(a_p, b_p)`` the
    p-th pair of :func:`_xy_pairs`.

    Returns
    -------
    list of numpy.ndarray
        ``(2 l + 1, l + 1, (l + 1)(l + 2) / 2)`` float64 for ``l = 0..L``.
    """
    pairs = _xy_pairs(L)
    tables = []
    for l in range(L + 1):
        mono, coef = real_solid_harmonic_coefficients(l)
        table = np.zeros((2 * l + 1, l + 1, (l + 1) * (l + 2) // 2))
        for i, (a, b, g) in enumerate(mono.tolist()):
            table[:, g, pairs.index((a, b))] = coef[:, i]
        tables.append(table)
    return tables


def modulus(f: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """Smoothed Euclidean norm over ``dim`` (see :func:`smooth_modulus`)."""
    # Accumulating over contiguous slices is several times faster than a strided reduction.
    parts = f.unbind(dim)
    energy = parts[0] * parts[0]
    for part in parts[1:]:
        energy = torch.addcmul(energy, part, part)
    return smooth_modulus(energy, eps)


def first_layer(p: torch.Tensor, w: torch.Tensor, tables: Sequence[torch.Tensor], s: float, c: float, h: float,
                k_own: torch.Tensor, modulus_eps: float) -> torch.Tensor:
    """Modulus ``U_1[j, l]`` of ``rho * psi_{j,l}`` on the chunk's grid, zero outside each molecule's box.

    Parameters
    ----------
    p : torch.Tensor
        ``(B, A, 3)`` positions in the molecules' frames.
    w : torch.Tensor
        ``(B, C, A)`` weights of the atoms in each channel.
    tables : sequence of torch.Tensor
        :func:`first_layer_tables` of every degree, in ``p``'s dtype and device.
    s, c, h : float
        Wavelet width, field width ``sqrt(s^2 + sigma^2)`` and grid step.
    k_own : torch.Tensor
        ``(B, 3)`` half sides of each molecule's box, in grid steps.
    modulus_eps : float
        Relative smoothing of the modulus.

    Returns
    -------
    torch.Tensor
        ``(B, L+1, nx, ny, C, nz)``.
    """
    L = len(tables) - 1
    B, C, A = w.shape
    dt, dev = p.dtype, p.device
    K = k_own.amax(0).tolist()
    factors = []
    masks = axis_masks(k_own, [2 * k + 1 for k in K], dt)
    for d in range(3):
        t = h * torch.arange(-K[d], K[d] + 1, device=dev, dtype=dt)
        diff = (t[None, None, :] - p[:, :, d, None]) / c  # (B, A, n), in units of c
        # The box mask on the per-axis factors zeroes the fields outside each molecule's box.
        g = torch.exp(-0.5 * diff * diff) * masks[d][:, None, :]
        factors.append(torch.stack([diff**a * g for a in range(L + 1)], 2))  # (B, A, L+1, n)
    fx, fy, fz = factors
    nx, ny, nz = fx.shape[-1], fy.shape[-1], fz.shape[-1]
    xy = torch.stack([fx[:, :, a, :, None] * fy[:, :, b, None, :] for a, b in _xy_pairs(L)], 1)  # (B,P,A,nx,ny)
    out = []
    for l, table in enumerate(tables):
        amp = (2 * math.pi) ** -1.5 * (s / c) ** l * c**-3
        # F_l^m = sum_g sum_atoms [sum_{a+b=l-g} C^m_{abg} X_a Y_b] Z_g: the harmonic
        # coefficients are folded into the (x, y) factors, and one broadcast matrix
        # product over (g, atom) gives the 2l+1 fields of every channel.
        cxy = torch.einsum("mgp,bpaxy->bmxyga", (table * amp).to(dt), xy[:, :table.shape[2]])
        cxy = cxy.reshape(B, 2 * l + 1, nx * ny, (l + 1) * A)
        wz = (w[:, None, :, :, None] * fz.permute(0, 2, 1, 3)[:, : l + 1, None]).transpose(2, 3)
        f = cxy @ wz.reshape(B, 1, (l + 1) * A, C * nz)  # (B, 2l+1, nx ny, C nz)
        out.append(modulus(f.view(B, 2 * l + 1, nx, ny, C, nz), 1, modulus_eps * amp))
    return torch.stack(out, 1)


def second_layer(u1: torch.Tensor, k_own: torch.Tensor, h1: float, h2: float, s2: float,
                 harmonics: Sequence[torch.Tensor], eps: Sequence[float]) -> torch.Tensor:
    """Modulus ``U_2`` of ``U_1[j1, l] * psi_{j2,l}`` on the coarser grid of scale ``j2``, every ``l``.

    Parameters
    ----------
    u1 : torch.Tensor
        ``(B, L+1, n1x, n1y, C, n1z)`` first layer, zero outside each molecule's box.
    k_own : torch.Tensor
        ``(B, 3)`` half sides of each molecule's box on the new grid, in steps ``h2``.
    h1, h2 : float
        Steps of the first-layer grid and of the new one.
    s2 : float
        Wavelet width of scale ``j2``.
    harmonics : sequence of torch.Tensor
        ``(2 l + 1, n_mono)`` monomial coefficients of ``R_l^m`` per degree, in ``u1``'s dtype.
    eps : sequence of float
        Modulus smoothing of each degree.

    Returns
    -------
    torch.Tensor
        ``(B, L+1, n2x, n2y, C, n2z)``, zero outside each molecule's box.
    """
    B, Lp1, n1x, n1y, C, n1z = u1.shape
    dt, dev = u1.dtype, u1.device
    kx, ky, kz = (hermite_filters(n1, k2, h1, h2, s2, Lp1 - 1, dt, dev)
                  for n1, k2 in zip((n1x, n1y, n1z), k_own.amax(0).tolist()))
    n2x, n2y, n2z = kx.shape[1], ky.shape[1], kz.shape[1]
    mx, my, mz = axis_masks(k_own, (n2x, n2y, n2z), dt)
    mask = mx[:, :, None, None, None] * my[:, None, :, None, None] * mz[:, None, None, None, :]
    res = []
    for l in range(Lp1):
        mono = monomials(l)
        # x^a y^b z^c terms of s2^l R_l^m(-grad) g_{s2}, one axis at a time: the x
        # filters of all a <= l at once, then the y filter of each b <= l - a, then the
        # z filter of c = l - a - b as one matrix product over contiguous rows.
        vx = kx[: l + 1].reshape((l + 1) * n2x, n1x) @ u1[:, l].reshape(B, n1x, n1y * C * n1z)
        vx = vx.view(B, l + 1, n2x, n1y, C * n1z)
        terms = {}
        for a in range(l + 1):
            va = vx[:, a].reshape(B * n2x, n1y, C * n1z)
            for b in range(l - a + 1):
                vy = (ky[b] @ va).view(-1, n1z)
                terms[a, b] = (vy @ kz[l - a - b].T).view(B, n2x, n2y, C, n2z)
        fields = torch.stack([terms[a, b] for a, b, _ in mono])
        fields = harmonics[l].to(dt) @ fields.view(len(mono), -1)
        res.append(modulus(fields.view(2 * l + 1, B, n2x, n2y, C, n2z), 0, eps[l]) * mask)
    return torch.stack(res, 1)


def integrals(u: torch.Tensor, vol: float, qs: Sequence[float], eps: Sequence[float],
              modulus_eps: float) -> torch.Tensor:
    """``vol * sum u^q`` over the grid axes of ``(B, L+1, nx, ny, C, nz)``: ``(B, L+1, C, nq)``.

    ``eps[l]`` is the modulus smoothing of degree ``l``; exponents ``q < 1`` use the
    smooth ``(u + eps)^q - eps^q`` when ``modulus_eps > 0`` (``u^q`` has an infinite
    slope at 0).
    """
    dims = (2, 3, 5)
    sq = u * u
    cache = {1.0: u, 2.0: sq, 3.0: sq * u if 3.0 in qs else None}
    res = []
    for q in qs:
        f = cache.get(q)
        if f is None and q < 1 and modulus_eps > 0:
            e = torch.tensor(eps, dtype=u.dtype, device=u.device).reshape(-1, 1, 1, 1, 1)
            f = (torch.sqrt(u + e) if q == 0.5 else (u + e) ** q) - e**q
        elif f is None:
            f = safe_power(u, q)
        res.append(f.sum(dims))
    return torch.stack(res, -1) * vol


def first_layer_bytes(B: int, A: int, C: int, L: int, n: Sequence[float], itemsize: int) -> float:
    """Estimated peak bytes of :func:`first_layer` and its :func:`integrals` on grids of ``n`` points per axis."""
    points = B * C * n[0] * n[1] * n[2]
    xy = B * A * n[0] * n[1] * ((L + 1) * (L + 2) // 2 + (2 * L + 1) * (L + 1))
    # Fields of every degree (the list and its stack), the 2l+1 components of one
    # degree with their energy, and the powers of the integrals.
    return itemsize * (points * ((L + 1) * 5 + (2 * L + 1) * 2) + xy)


def second_layer_bytes(B: int, C: int, L: int, n1: Sequence[float], n2: Sequence[float], itemsize: int) -> float:
    """Estimated peak bytes of :func:`second_layer` and its :func:`integrals`, ``u1`` included."""
    points1, points2 = B * C * n1[0] * n1[1] * n1[2], B * C * n2[0] * n2[1] * n2[2]
    resampled = (L + 1) * B * C * n2[0] * n1[1] * n1[2]
    terms = (L + 1) * (L + 2) // 2
    return itemsize * ((L + 1) * points1 + resampled + points2 * (2 * terms + (2 * L + 1) * 2 + (L + 1) * 5))
