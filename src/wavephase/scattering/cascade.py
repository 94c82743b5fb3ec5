"""The 2D scattering cascade, written once against a small backend interface.

``S0 = x * phi``, ``S1 = |x * psi_j1| * phi`` and ``S2 = ||x * psi_j1| * psi_j2| * phi``
(``j1 < j2``), each subsampled by ``2**J``, with Kymatio's padding, subsampling and
channel order. :func:`scatter` is the whole algorithm; a :class:`CascadeBackend`
says how each step is computed (FFTs, or DFTs as matrix products) and in which
memory layout its maps live, which only the backend knows. Every step works on
all angles of a scale at once (and at order 2 on all pairs of angles).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from wavephase.scattering._workspace import Workspace
from wavephase.scattering.matrices import lowpass_matrices
from wavephase.scattering.periodize import kymatio_level

__all__ = ["CascadeBackend", "channel_count", "scatter"]


def channel_count(J: int, L: int, max_order: int) -> int:
    """Number of channels ``1 + L J (+ L^2 J (J - 1) / 2 at order 2)`` of the cascade.

    Parameters
    ----------
    J, L : int
        Scales and angles.
    max_order : int
        1 or 2.

    Returns
    -------
    int
        The number of channels, before any rotation pooling.
    """
    return 1 + L * J + (L * L * J * (J - 1) // 2 if max_order == 2 else 0)


class CascadeBackend(nn.Module, ABC):
    """How the steps of :func:`scatter` are computed, and on which filters.

    A backend holds its filters and matrices as buffers (so ``.to()`` and
    ``.double()`` move them) and chooses the memory layout of every map; the
    cascade only passes its results from one step to the next. Each step takes
    the workspaces of the chunk: ``work`` for results, reused from chunk to
    chunk only when no graph is recorded, and ``scratch`` for intermediates that
    no backward pass keeps, reused always.

    Parameters
    ----------
    J, L : int
        Scales and angles of the filters.
    shape : (int, int)
        Image size ``(M, N)``.
    padded_shape : (int, int)
        The padded grid the filters live on.
    max_order : int
        1 or 2.

    Shapes
    ------
    x: (B, M, N) -> (B, C, M // 2**J, N // 2**J) through :func:`scatter`
    """

    #: Whether one-thread workers scattering parts of a batch side by side beat torch's own threads.
    uses_workers = False

    def __init__(self, J: int, L: int, shape: tuple[int, int], padded_shape: tuple[int, int], max_order: int) -> None:
        super().__init__()
        self.J, self.L, self.max_order = J, L, max_order
        self.shape, self.padded_shape = shape, padded_shape
        self.channels = channel_count(J, L, max_order)
        self.output_shape = (shape[0] // 2**J, shape[1] // 2**J)

    def block_levels(self) -> list[tuple[int, int]]:
        """The pairs ``(j, level)`` of wavelet ``psi_j`` applied at resolution ``2**level``.

        Order 1 applies every scale at level 0, order 2 scale ``j2`` at every level
        ``j1 < j2``; level 0 keeps the full band, so there the order-1 blocks
        serve order 2 as well.

        Returns
        -------
        list of (int, int)
            The pairs whose filter blocks a backend needs.
        """
        return [(j, level) for j in range(self.J) for level in range(max(1, j) if self.max_order == 2 else 1)]

    def lowpass_levels(self, phi: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level ``r < J``, the low-pass of maps at ``2**r`` as matrices (see :func:`lowpass_matrices`).

        Parameters
        ----------
        phi : torch.Tensor
            The low-pass on the padded grid, float64 (where the Gaussian is
            separable to round-off: rounded to float32 its matrices would need
            rank 6-10 instead of 1).

        Returns
        -------
        list of (torch.Tensor, torch.Tensor)
            ``(A, B)`` per level, float64.

        Shapes
        ------
        phi: (Mp, Np) -> [(R, Mp / 2**r, m), (R, Np / 2**r, n)] per level
        """
        return [lowpass_matrices(kymatio_level(phi, r), 2 ** (self.J - r)) for r in range(self.J)]

    def bytes_per_image(self, dtype: torch.dtype) -> int:
        """Size of the largest complex intermediate for one image (order-1 or order-2 wavelet maps).

        Parameters
        ----------
        dtype : torch.dtype
            Real dtype of the images.

        Returns
        -------
        int
            Bytes.
        """
        Mp, Np = self.padded_shape
        complex_bytes = 2 * torch.finfo(dtype).bits // 8
        order2 = self.L * self.L * (Mp // 2) * (Np // 2) if self.max_order == 2 and self.J > 1 else 0
        return complex_bytes * max(self.L * Mp * Np, order2)

    def chunk_limit(self, worker: bool, record: bool) -> int | None:
        """Largest chunk, in bytes of :meth:`bytes_per_image`, that runs fastest (None: no cap).

        Parameters
        ----------
        worker : bool
            Whether the chunk runs in a one-thread worker.
        record : bool
            Whether an autograd graph is recorded.

        Returns
        -------
        int or None
            The cap; the caller's ``chunk_bytes`` bounds it further.
        """
        return None

    def buffer(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """The buffer ``name`` in ``dtype`` (cast on the fly when the module holds another precision).

        Parameters
        ----------
        name : str
            Buffer name.
        dtype : torch.dtype
            Real dtype of the maps it meets.

        Returns
        -------
        torch.Tensor
            The buffer or its cast copy.
        """
        buf = getattr(self, name)
        return buf if buf.dtype == dtype else buf.to(dtype)

    @abstractmethod
    def prepare(self, x: torch.Tensor, work: Workspace, scratch: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
        """The images in the backend's layout, and the spectrum of their padded version.

        Parameters
        ----------
        x : torch.Tensor
            Real images.
        work, scratch : Workspace
            The chunk's buffers (see the class docstring).

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            The images for :meth:`lowpass_input`, the spectrum for order 1.

        Shapes
        ------
        x: (B, M, N) -> layouts of the backend
        """

    @abstractmethod
    def lowpass_input(self, x: torch.Tensor, work: Workspace) -> torch.Tensor:
        """Order 0, ``x * phi`` subsampled by ``2**J`` and cropped, from :meth:`prepare`'s images."""

    @abstractmethod
    def wavelet_modulus(self, u_hat: torch.Tensor, j: int, level: int, work: Workspace, scratch: Workspace,
                        key: str) -> torch.Tensor:
        """``|u * psi_j|`` for all angles, subsampled to ``2**j``, from a spectrum at resolution ``2**level``.

        Parameters
        ----------
        u_hat : torch.Tensor
            The input's spectrum (order 1, ``level`` 0) or that of ``|U1|`` at
            ``level = j1`` (order 2), from :meth:`prepare` or :meth:`spectrum`.
        j, level : int
            Scale of the wavelets and resolution of the spectrum, ``j > level``
            at order 2.
        work, scratch : Workspace
            The chunk's buffers; ``key`` names the buffer of the result in ``work``.
        key : str
            ``"u1"`` or ``"u2"``.

        Returns
        -------
        torch.Tensor
            Real maps, one more angle axis than ``u_hat``'s maps.
        """

    @abstractmethod
    def spectrum(self, u: torch.Tensor, level: int, work: Workspace, scratch: Workspace) -> torch.Tensor:
        """Spectrum of the order-1 maps ``|U1|`` at resolution ``2**level``, ready for order 2."""

    @abstractmethod
    def lowpass(self, u: torch.Tensor, level: int, work: Workspace) -> torch.Tensor:
        """``u * phi`` of maps at resolution ``2**level``, subsampled to ``2**J`` and cropped."""

    @abstractmethod
    def assemble(self, order0: torch.Tensor, order1: list[torch.Tensor], order2: list[list[torch.Tensor]],
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """All coefficients in Kymatio's channel order (into ``out`` when given).

        Parameters
        ----------
        order0 : torch.Tensor
            From :meth:`lowpass_input`.
        order1 : list of torch.Tensor
            ``order1[j1]``: the low-passed maps of scale ``j1``.
        order2 : list of list of torch.Tensor
            ``order2[j1][j2 - j1 - 1]``: those of the pair ``(j1, j2)``.
        out : torch.Tensor, optional
            Where to write (only without autograd).

        Returns
        -------
        torch.Tensor
            The coefficients.

        Shapes
        ------
        -> (B, C, M // 2**J, N // 2**J)
        """


def scatter(backend: CascadeBackend, x: torch.Tensor, work: Workspace | None = None,
            scratch: Workspace | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """Scattering coefficients of a batch of images: the cascade, on any backend.

    Parameters
    ----------
    backend : CascadeBackend
        How the steps are computed.
    x : torch.Tensor
        Real images, float32 or float64, on the backend's device.
    work : Workspace, optional
        Buffers for results, reused from call to call when enabled (only
        without autograd); fresh tensors by default.
    scratch : Workspace, optional
        Buffers for intermediates that no backward pass keeps.
    out : torch.Tensor, optional
        Where to write the coefficients (only without autograd).

    Returns
    -------
    torch.Tensor
        Coefficients in Kymatio's channel order (``out`` when given).

    Shapes
    ------
    x: (B, M, N) -> (B, C, M // 2**J, N // 2**J), C = 1 + L J + L^2 J (J - 1) / 2 at order 2
    """
    J = backend.J
    work, scratch = work or Workspace(False), scratch or Workspace(True)
    x, x_hat = backend.prepare(x, work, scratch)
    order0 = backend.lowpass_input(x, work)
    order1: list[torch.Tensor] = []
    order2: list[list[torch.Tensor]] = []
    for j1 in range(J):
        u1 = backend.wavelet_modulus(x_hat, j1, 0, work, scratch, "u1")
        order1.append(backend.lowpass(u1, j1, work))
        if backend.max_order == 2 and j1 < J - 1:
            u1_hat = backend.spectrum(u1, j1, work, scratch)
            order2.append([backend.lowpass(backend.wavelet_modulus(u1_hat, j2, j1, work, scratch, "u2"), j2, work)
                           for j2 in range(j1 + 1, J)])
    return backend.assemble(order0, order1, order2, out)
