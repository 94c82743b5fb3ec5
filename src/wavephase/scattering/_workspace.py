"""Output buffers reused from chunk to chunk by the 2D scattering cascade (private)."""

from __future__ import annotations

import math

import torch

__all__ = ["Workspace"]


class Workspace:
    """Output buffers reused by the chunks of one forward pass.

    Without autograd, every chunk of images has intermediates of the same
    shapes. Handing out the same memory each time avoids the page faults of
    fresh allocations: glibc gives freed multi-megabyte blocks back to the
    system between chunks, and faulting them in again cost about 20 % of the
    CPU time of a 256 x 256 transform. Each role (key) owns one block of
    memory, sized for its largest request, so the intermediates of all scales
    share it. With autograd the buffers would be overwritten while still saved
    for the backward pass, so a disabled workspace allocates afresh on every
    request.

    Parameters
    ----------
    enabled : bool
        Reuse buffers (only when no autograd graph is recorded).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._buffers: dict[tuple[str, torch.device], torch.Tensor] = {}
        # The last view handed out per key: chunks repeat the same requests, and
        # building a view costs ~10 us, a few percent of a small chunk.
        self._views: dict[tuple[str, torch.device], tuple[tuple[int, ...], torch.dtype, torch.Tensor]] = {}

    def empty(self, key: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
        """An uninitialised tensor in the memory of ``key`` when enabled (a new one otherwise).

        Parameters
        ----------
        key : str
            Role of the buffer: a request overwrites what the previous request
            with the same key returned, so tensors alive at the same time need
            different keys.
        shape : tuple of int
            Shape of the buffer.
        dtype : torch.dtype
            Its dtype.
        device : torch.device
            Its device.

        Returns
        -------
        torch.Tensor
            Contiguous tensor of the requested shape.

        Shapes
        ------
        -> shape
        """
        if not self.enabled:
            return torch.empty(shape, dtype=dtype, device=device)
        shape = tuple(shape)
        last = self._views.get((key, device))
        if last is not None and last[0] == shape and last[1] == dtype:
            return last[2]
        nbytes = math.prod(shape) * dtype.itemsize
        memory = self._buffers.get((key, device))
        if memory is None or memory.numel() < nbytes:
            memory = self._buffers[(key, device)] = torch.empty(nbytes, dtype=torch.uint8, device=device)
        view = memory[:nbytes].view(dtype).view(shape)
        self._views[(key, device)] = (shape, dtype, view)
        return view

    def out(self, key: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
            device: torch.device) -> torch.Tensor | None:
        """:meth:`empty` when enabled, else None: the ``out=`` argument of a torch function.

        Parameters
        ----------
        key, shape, dtype, device
            As for :meth:`empty`.

        Returns
        -------
        torch.Tensor or None
            A reused buffer, or None (let the function allocate and record its graph).

        Shapes
        ------
        -> shape
        """
        return self.empty(key, shape, dtype, device) if self.enabled else None
