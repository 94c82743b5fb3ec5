import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Small FFTs gain nothing from threads, and on a shared machine threads thrash.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
