"""What every family of wavelet moments shares: the reference, the normalisation and the loss.

A moment statistic ``Phi`` maps a stationary field to a few thousand moments,
each divided by the reference's wavelet power ``P_{j,l} = <|x * psi_{j,l}|^2>``
or variance ``sigma^2`` so that it is O(1) (a correlation coefficient, mostly).
:class:`MomentStatistics` holds the Morlet wavelets, computes those reference
quantities from target fields (:meth:`~MomentStatistics.set_reference`), returns
the normalised moments of new fields (:meth:`~MomentStatistics.forward`) and
their squared distance to the target's (:meth:`~MomentStatistics.loss`). A
subclass writes what differs: its families (:meth:`~MomentStatistics.raw_moments`,
:meth:`~MomentStatistics.family_sizes`) and how each is divided by the
reference (:meth:`~MomentStatistics._normalise_families`).

Numerics. Every normalised moment is homogeneous of degree 0 in the field and
its reference taken together, so both are divided by a power of two near their
largest value before the moments are taken: an exact rescaling that keeps float32
fields of any magnitude away from overflow and underflow. Square roots have a
finite gradient at 0, so constant and zero fields have finite gradients. Where
the moments have no finite value (a constant field without a reference; a field
whose moments overflow its dtype relative to the reference), a ``ValueError``
names the cause.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from wavephase.filters import morlet_bank
from wavephase.resources import check_memory, parse_memory_limit
from wavephase.validation import check_image_shape, check_positive_int, check_real_tensor, check_same_device

__all__ = ["MomentStatistics", "NonFiniteMomentsError", "cross_scale_power", "moment_loss", "root"]

# Fields per chunk when the reference moments are summed: hundreds of references fit in memory.
_REFERENCE_CHUNK = 16
# Real (M, N) planes of float64 held while the filters are built, per wavelet (measured upper bound).
_FILTER_PLANES = 4


class NonFiniteMomentsError(ValueError):
    """The moments of a field overflow its dtype (the field is far larger than the reference)."""


def root(v: torch.Tensor) -> torch.Tensor:
    """Square root of a non-negative moment, with a finite gradient at 0.

    Parameters
    ----------
    v : torch.Tensor
        Real, non-negative up to rounding.

    Returns
    -------
    torch.Tensor
        ``sqrt(max(v, tiny))``; its gradient is 0 where ``v <= tiny``.

    Shapes
    ------
    v: (...) -> (...)
    """
    return v.clamp_min(torch.finfo(v.dtype).tiny).sqrt()


def moment_loss(stats: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over fields and families of the mean squared modulus of the moment mismatch.

    Parameters
    ----------
    stats : dict
        Family -> moments of the fields, ``(..., n_f)`` (complex or real).
    target : dict
        Family -> target moments, broadcastable to ``stats``.

    Returns
    -------
    torch.Tensor
        Scalar; empty families and an empty batch contribute nothing.

    Shapes
    ------
    stats: dict family -> (..., n_f) -> ()
    """
    if not target:
        raise ValueError("no target moments: call set_reference(target) first or pass target_moments.")
    total = next(iter(stats.values())).real.new_zeros(())
    for name, value in stats.items():
        if value.shape[-1]:
            diff = value - target[name]
            total = total + (diff.real.square() + diff.imag.square()).mean(-1).sum()
    return total


def _exponent(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Exponent ``e`` with ``max |x| < 2^e`` over ``dims`` (0 for a zero field), within the dtype's range."""
    limit = int(math.log2(torch.finfo(x.dtype).max)) - 8  # 2^-e and 2^e stay normal numbers
    return torch.frexp(x.detach().abs().amax(dims, keepdim=True))[1].clamp(-limit, limit)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _rescale(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``x 2^-exponent``: exact, since ``exp2`` of an integer is a power of two."""
    return x * torch.exp2(-exponent.to(x.dtype))


class MomentStatistics(nn.Module):
    """Base of the wavelet moment statistics of stationary 2D fields.

    Parameters
    ----------
    shape : (int, int)
        Field size ``(M, N)``; each side at least ``2**J``.
    J : int
        Number of wavelet scales.
    L : int
        Number of orientations in ``[0, pi)``.
    dtype : torch.dtype
        Dtype of the filters (float32 or float64). Fields of the other float
        dtype are accepted: the moments follow the input's dtype.
    memory_limit : int, float or str, optional
        Largest memory the filters, or the moments of one batch of fields and their
        gradient, may need (bytes, or e.g. ``"8GB"``); default
        ``$WAVEPHASE_MEMORY_LIMIT``, else a quarter of the memory available (see
        :mod:`wavephase.resources`). Past it, construction or the call raises
        :class:`~wavephase.exceptions.ResourceLimitError` before allocating.

    Attributes
    ----------
    reference_power : torch.Tensor or None
        ``P_{j,l}`` of the reference fields, ``(J, L)``, in units of
        ``2^(2 reference_exponent)`` (see the module docstring).
    reference_var : torch.Tensor or None
        Mean spatial variance of the reference fields, same units.
    reference_mean : torch.Tensor or None
        Mean of the reference fields, in units of ``2^reference_exponent``.

    Shapes
    ------
    x: (..., M, N) real -> dict family -> (..., n_f) complex
    """

    #: names of the families, in the order :meth:`forward` returns them
    families: tuple[str, ...] = ()
    #: raw families whose reference average the normalisation uses (kept as ``reference_<family>`` buffers)
    reference_families: tuple[str, ...] = ()

    def __init__(self, shape: tuple[int, int], J: int, L: int = 8, *, dtype: torch.dtype = torch.float32,
                 memory_limit: int | float | str | None = None) -> None:
        super().__init__()
        self.shape = check_image_shape(shape, J)
        self.J = check_positive_int(J, "J")
        self.L = check_positive_int(L, "L")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        self.memory_limit = parse_memory_limit(memory_limit)
        M, N = self.shape
        check_memory(_FILTER_PLANES * 8.0 * self.J * self.L * M * N, f"the {self.J * self.L} Morlet filters of "
                     f"{M}x{N} fields", "cpu", self.memory_limit, "lower the field size, J or L")
        self.register_buffer("psi", morlet_bank(self.shape, self.J, self.L, dtype=dtype).psi.clone(),
                             persistent=False)
        for name in ("reference_exponent", "reference_power", "reference_var", "reference_mean",
                     *(f"reference_{f}" for f in self.reference_families), *(f"target_{f}" for f in self.families)):
            self.register_buffer(name, None, persistent=False)

    # ------------------------------------------------------------------ what a subclass writes
    def family_sizes(self) -> dict[str, int]:
        """Number of (complex) moments per family, for one field.

        Returns
        -------
        dict
            Family name -> count.
        """
        raise NotImplementedError

    def raw_moments(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Unnormalised moments, the wavelet power and the variance of each field.

        Parameters
        ----------
        x : torch.Tensor
            Real fields.

        Returns
        -------
        moments : dict
            Family -> ``(B, n_f)``, before normalisation.
        power : torch.Tensor
            ``<|z_{j,l}|^2>``, shape ``(B, J, L)``.
        var : torch.Tensor
            Spatial variance of each field (about the reference mean where the
            subclass says so), shape ``(B,)``.

        Shapes
        ------
        x: (B, M, N) -> dict of (B, n_f), (B, J, L), (B,)
        """
        raise NotImplementedError

    def _normalise_families(self, moments: dict[str, torch.Tensor], power: torch.Tensor, root_power: torch.Tensor,
                            sigma: torch.Tensor, own: bool) -> dict[str, torch.Tensor]:
        """Every family but ``mean`` divided by the reference (``power`` (B, J, L), ``sigma`` (B,))."""
        raise NotImplementedError

    def _planes(self, gradient: bool = True) -> int:
        """Complex (M, N) planes held per field while its moments (and their gradient) are computed.

        Measured on the CPU; the moments alone, under ``torch.no_grad``, held 2.1 J L
        planes per field (256 x 256, J=6, L=8, 4 to 16 fields).
        """
        return (12 if gradient else 3) * self.J * self.L

    def memory_estimate(self, n_fields: int, dtype: torch.dtype = torch.float32, gradient: bool = True) -> int:
        """Bytes that the moments of ``n_fields`` fields and their gradient need, about.

        Parameters
        ----------
        n_fields : int
            Fields computed at once.
        dtype : torch.dtype
            Dtype of the fields (float32 or float64).
        gradient : bool
            Whether a graph is kept for their gradient (False: the moments alone,
            as for the reference).

        Returns
        -------
        int
            Bytes (an upper estimate, measured on the CPU).
        """
        complex_size = 16 if dtype == torch.float64 else 8
        return int(n_fields) * self._planes(gradient) * self.shape[0] * self.shape[1] * complex_size

    def _check_memory(self, n_fields: int, x: torch.Tensor) -> None:
        M, N = self.shape
        gradient = torch.is_grad_enabled() and x.requires_grad
        check_memory(self.memory_estimate(n_fields, x.dtype, gradient), f"the moments of {n_fields} field(s) of "
                     f"{M}x{N} ({self.J} scales, {self.L} angles)", x.device, self.memory_limit,
                     "pass fewer fields at once, or lower J or L")

    # ------------------------------------------------------------------ shared machinery
    def wavelet_transform(self, x: torch.Tensor) -> torch.Tensor:
        """All wavelet coefficients ``x * psi_{j,l}`` (periodic), in one batched FFT.

        Parameters
        ----------
        x : torch.Tensor
            Fields, float32 or float64; the coefficients keep their precision.

        Returns
        -------
        torch.Tensor
            Coefficients ``z_{j,l}``.

        Shapes
        ------
        x: (B, M, N) -> (B, J, L, M, N) complex
        """
        return torch.fft.ifft2(torch.fft.fft2(x)[:, None, None] * self.psi.to(x.dtype))

    def _check(self, x: object, name: str = "x") -> torch.Tensor:
        x = check_real_tensor(x, name, min_ndim=2)
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"{name} has spatial shape {tuple(x.shape[-2:])} but the statistics were built for "
                             f"{self.shape}; build {type(self).__name__}(shape={tuple(x.shape[-2:])}, ...).")
        check_same_device(x, self.psi, name, type(self).__name__)
        return x

    def _normalise(self, moments: dict[str, torch.Tensor], power: torch.Tensor, var: torch.Tensor,
                   own: bool = False) -> dict[str, torch.Tensor]:
        """Moments divided by the powers ``power`` and variance ``var`` (the reference's, or ``own``)."""
        B = next(iter(moments.values())).shape[0]
        power = power.expand(B, self.J, self.L)
        sigma = var.expand(B).sqrt()
        out = {"mean": moments["mean"] / torch.stack([sigma, sigma.square()], -1)}
        out.update(self._normalise_families(moments, power, power.sqrt(), sigma, own))
        # every path returns the families in one order, that of family_sizes()
        return {f: out[f] for f in self.family_sizes()}

    def _references(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {f: getattr(self, f"reference_{f}").to(dtype) for f in self.reference_families}

    @property
    def reference_moments(self) -> dict[str, torch.Tensor]:
        """The references' normalised moments, ``(n_f,)`` per family; empty before :meth:`set_reference`."""
        if self.reference_power is None:
            return {}
        return {f: getattr(self, f"target_{f}") for f in self.families}

    def set_reference(self, target: torch.Tensor) -> "MomentStatistics":
        """Fix the normalisation (and target moments) from one or several reference fields.

        The raw moments, wavelet power and variance are averaged over the
        reference fields, then normalised once: each family is a fixed function
        of expectations, so one field can match the average of several references.

        Parameters
        ----------
        target : torch.Tensor
            Reference fields, finite and not constant.

        Returns
        -------
        MomentStatistics
            ``self``.

        Raises
        ------
        ValueError
            If ``target`` is empty, constant, has no power at some wavelet scale
            and angle, or holds NaN or infinite values.

        Shapes
        ------
        target: (..., M, N)
        """
        x = self._check(target, "target").detach().reshape(-1, *self.shape)
        if x.shape[0] == 0:
            raise ValueError(f"target holds no field (shape {tuple(target.shape)}); pass at least one (M, N) field.")
        self._check_memory(min(x.shape[0], _REFERENCE_CHUNK), x)
        exponent = _exponent(x, (0, 1, 2)).reshape(())
        x = _rescale(x, exponent)
        with torch.no_grad():
            centre = x.mean()
            sums: dict[str, torch.Tensor] = {}
            for chunk in x.split(_REFERENCE_CHUNK):
                moments, power, var = self._raw(chunk, centre)
                for k, v in {**moments, "power": power, "var": var}.items():
                    sums[k] = sums[k] + v.sum(0, keepdim=True) if k in sums else v.sum(0, keepdim=True)
            mean = {k: v / x.shape[0] for k, v in sums.items()}
            power, var = mean.pop("power"), mean.pop("var")
            if float(var) <= 0 or not bool((power > 0).all()):
                raise ValueError(f"target is constant (zero variance or zero wavelet power at some scale); "
                                 f"{type(self).__name__} needs fields with fluctuations at every scale.")
            for f in self.reference_families:
                setattr(self, f"reference_{f}", mean[f].real[0])
            self.reference_exponent, self.reference_mean = exponent, centre
            self.reference_power, self.reference_var = power[0], var[0]
            norm = self._normalise(mean, power[0], var[0])
        for f, value in norm.items():
            setattr(self, f"target_{f}", value[0].to(_complex(x.dtype)))
        return self

    def _raw(self, x: torch.Tensor, centre: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor,
                                                                             torch.Tensor]:
        """``raw_moments`` of scaled fields; ``centre`` is the reference mean where a subclass uses one."""
        return self.raw_moments(x)

    def _moments(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self._check(x)
        batch, B = x.shape[:-2], x[..., 0, 0].numel()
        complex_dtype = _complex(x.dtype)
        if B == 0:
            return {f: x.new_zeros(*batch, n, dtype=complex_dtype) for f, n in self.family_sizes().items()}
        self._check_memory(B, x)
        x = x.reshape(B, *self.shape)
        if self.reference_power is None:
            x = _rescale(x, _exponent(x, (1, 2)))
            moments, power, var = self._raw(x, None)
            power, var = power.detach(), var.detach()
            if not bool((var > 0).all()) or not bool((power > 0).all()):
                raise ValueError("x holds a constant field, or one without power at some wavelet scale, and no "
                                 "reference is set: its moments have no normalisation; call "
                                 "set_reference(target) first.")
            norm = self._normalise(moments, power, var, own=True)
        else:
            x = _rescale(x, self.reference_exponent)
            moments, power, var = self._raw(x, self.reference_mean.to(x.dtype))
            norm = self._normalise(moments, self.reference_power.to(x.dtype), self.reference_var.to(x.dtype))
        return {k: v.to(complex_dtype).reshape(*batch, v.shape[-1]) for k, v in norm.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised moments of each field.

        Uses the reference set by :meth:`set_reference`, or each field's own
        (detached) power and variance when none is set.

        Parameters
        ----------
        x : torch.Tensor
            Real fields, float32 or float64.

        Returns
        -------
        dict
            Family -> complex moments in ``x``'s precision; an empty batch gives
            empty moments.

        Raises
        ------
        ValueError
            Without a reference, for a constant field or one without power at some
            wavelet scale; :class:`NonFiniteMomentsError` when the moments overflow.

        Shapes
        ------
        x: (..., M, N) -> dict family -> (..., n_f) complex
        """
        moments = self._moments(x)
        # one device synchronisation for every family
        if not bool(torch.stack([torch.isfinite(v.detach()).all() for v in moments.values()]).all()):
            raise self._overflow(x)
        return moments

    def loss(self, x: torch.Tensor, target_moments: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Sum over fields and families of the mean squared moment mismatch.

        Parameters
        ----------
        x : torch.Tensor
            Fields being synthesised.
        target_moments : dict, optional
            Target moments; :attr:`reference_moments` by default.

        Returns
        -------
        torch.Tensor
            Scalar loss, finite with a finite gradient for every finite ``x``.

        Raises
        ------
        NonFiniteMomentsError
            If the moments or the loss overflow ``x``'s dtype.

        Shapes
        ------
        x: (..., M, N) -> ()
        """
        total = moment_loss(self._moments(x), self.reference_moments if target_moments is None else target_moments)
        if not bool(torch.isfinite(total.detach())):
            raise self._overflow(x)
        return total

    def _overflow(self, x: torch.Tensor) -> NonFiniteMomentsError:
        largest = float(x.detach().abs().amax()) if x.numel() else 0.0
        return NonFiniteMomentsError(
            f"x: the moments overflow {x.dtype} (largest |x| = {largest:.3g}, far from the reference's scale); "
            f"rescale x like the reference fields or compute in float64.")


def cross_scale_power(root_power: torch.Tensor, first: Sequence[int], second: Sequence[int]) -> torch.Tensor:
    """``sqrt(P_{j1,l1} P_{j2,l2})`` for scale pairs ``(first[p], second[p])`` and every pair of angles.

    Parameters
    ----------
    root_power : torch.Tensor
        ``sqrt(P)`` of each field.
    first, second : sequence of int
        Scales of each pair.

    Returns
    -------
    torch.Tensor
        The normalisation of a covariance between two scales.

    Shapes
    ------
    root_power: (B, J, L) -> (B, n_pairs, L, L)
    """
    j1 = torch.tensor(list(first), device=root_power.device, dtype=torch.long)
    j2 = torch.tensor(list(second), device=root_power.device, dtype=torch.long)
    return root_power[:, j1, :, None] * root_power[:, j2, None, :]
