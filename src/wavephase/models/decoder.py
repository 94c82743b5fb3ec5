"""The generator of a generative scattering network: a code, a small map, then upsampling blocks."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from wavephase.validation import check_image_shape, check_positive_int, check_real_tensor

__all__ = ["ScatteringDecoder"]


class ScatteringDecoder(nn.Module):
    """Convolutional generator: linear map to a small map, then upsampling blocks.

    The code goes through a linear map to a ``2**-n_blocks``-resolution map,
    then ``n_blocks`` blocks of upsample x2 / conv 3x3 / batch-norm / ReLU, and
    a last conv 3x3 to one channel.

    Parameters
    ----------
    n_inputs : int
        Size of the code (whitened embedding).
    shape : (int, int)
        Output image size, divisible by ``2**n_blocks``.
    n_blocks : int
        Number of (upsample x2, conv 3x3, batch-norm, ReLU) blocks.
    channels : sequence of int, optional
        Channels of the map entering each block (length ``n_blocks``); default
        128, 32, 16, 16, ...

    Shapes
    ------
    z: (..., n_inputs) -> (..., M, N)
    """

    def __init__(self, n_inputs: int, shape: tuple[int, int], n_blocks: int, channels: Sequence[int] | None = None) -> None:
        super().__init__()
        n_inputs = check_positive_int(n_inputs, "n_inputs")
        n_blocks = check_positive_int(n_blocks, "n_blocks")
        M, N = check_image_shape(shape, n_blocks)
        if M % 2**n_blocks or N % 2**n_blocks:
            raise ValueError(f"shape={shape} must be divisible by 2**n_blocks = {2**n_blocks}; pad the images.")
        if channels is None:
            # Few channels at high resolution: that is where a CPU spends its time.
            channels = [max(128 // 4**i, 16) for i in range(n_blocks)]
        channels = [check_positive_int(c, "channels") for c in channels]
        if len(channels) != n_blocks:
            raise ValueError(f"channels must have n_blocks={n_blocks} entries, got {len(channels)}.")
        self.n_inputs = n_inputs
        self.start = (M // 2**n_blocks, N // 2**n_blocks)
        self.shape = (M, N)
        self.channels = tuple(channels)
        self.linear = nn.Linear(n_inputs, channels[0] * self.start[0] * self.start[1])
        self.norm0 = nn.BatchNorm1d(channels[0] * self.start[0] * self.start[1])
        layers: list[nn.Module] = []
        outs = channels[1:] + [channels[-1]]
        for c_in, c_out in zip(channels, outs):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(outs[-1], 1, 3, padding=1))
        self.blocks = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode codes into images.

        Parameters
        ----------
        z : torch.Tensor
            Codes, in the dtype of the parameters.

        Returns
        -------
        torch.Tensor
            Images (raw outputs: logits when trained with a cross-entropy).

        Shapes
        ------
        z: (..., n_inputs) -> (..., M, N)
        """
        check_real_tensor(z, "z", min_ndim=1)
        if z.shape[-1] != self.n_inputs:
            raise ValueError(f"z must have shape (..., {self.n_inputs}), got {tuple(z.shape)}.")
        batch = z.shape[:-1]
        h = torch.relu(self.norm0(self.linear(z.reshape(-1, self.n_inputs))))
        h = self.blocks(h.view(-1, self.channels[0], *self.start))
        return h.view(*batch, *self.shape)
