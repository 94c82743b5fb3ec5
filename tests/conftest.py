"""Fixtures shared by several test folders."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread, restoring the previous count afterwards.

    Small FFTs gain nothing from threads, and on a shared machine threads thrash.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
