"""Buffers reused from chunk to chunk (wavephase.scattering._workspace)."""

import torch

from wavephase.scattering._workspace import Workspace


def test_workspace_hands_out_one_block_of_memory_per_key():
    cpu = torch.device("cpu")
    work = Workspace(True)
    a = work.empty("u", (2, 3), torch.float32, cpu)
    assert work.empty("u", (2, 3), torch.float32, cpu).data_ptr() == a.data_ptr()
    assert work.empty("v", (2, 3), torch.float32, cpu).data_ptr() != a.data_ptr()
    big = work.empty("u", (4, 5), torch.float64, cpu)  # larger: the key's memory is replaced
    small = work.empty("u", (2, 3), torch.float32, cpu)
    assert small.shape == (2, 3) and small.dtype == torch.float32 and small.data_ptr() == big.data_ptr()
    fresh = Workspace(False)
    assert fresh.out("u", (2, 3), torch.float32, cpu) is None
    first = fresh.empty("u", (2, 3), torch.float32, cpu)
    assert fresh.empty("u", (2, 3), torch.float32, cpu).data_ptr() != first.data_ptr()
