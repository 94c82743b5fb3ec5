import pytest
import torch

from wavephase.models.decoder import ScatteringDecoder


def test_decoder_shapes_channels_and_bad_arguments():
    decoder = ScatteringDecoder(12, (16, 8), n_blocks=2, channels=(16, 8)).eval()
    assert decoder(torch.zeros(3, 12)).shape == (3, 16, 8)
    assert decoder(torch.zeros(2, 3, 12)).shape == (2, 3, 16, 8)
    assert decoder(torch.zeros(0, 12)).shape == (0, 16, 8)
    assert ScatteringDecoder(12, (32, 32), n_blocks=3).channels == (128, 32, 16)
    with pytest.raises(ValueError, match="z must have shape"):
        decoder(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*n_blocks"):
        ScatteringDecoder(12, (12, 12), n_blocks=3)
    with pytest.raises(ValueError, match="channels must have n_blocks=2 entries"):
        ScatteringDecoder(12, (16, 16), n_blocks=2, channels=(8,))
