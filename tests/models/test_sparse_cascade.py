"""The sparse cascade: byte dropout, and one cascade trained and resumed from its checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavephase.models.sparse_cascade import ByteDropout, SparseScatteringNet, train_cascade
from wavephase.runs import Checkpoint


def test_byte_dropout_drops_at_its_rate_keeps_the_mean_and_is_seeded():
    drop = ByteDropout(0.3)
    x = torch.ones(200, 1000)
    torch.manual_seed(0)
    y = drop(x)
    assert abs(float((y == 0).float().mean()) - 77 / 256) < 0.005
    assert abs(float(y.mean()) - 1.0) < 0.01
    torch.manual_seed(0)
    torch.testing.assert_close(drop(x), y)
    assert drop.eval()(x) is x
    with pytest.raises(ValueError, match="p must be"):
        ByteDropout(1.0)


def test_net_maps_scattering_to_logits_and_codes():
    net = SparseScatteringNet(25, (4, 4), 3, n_proj=8, n_atoms=16, n_steps=3, lam=0.5, dropout=0.3,
                              log_eps=1e-4).eval()
    s = torch.rand(5, 25, 4, 4)
    assert net(s).shape == (5, 3)
    x, z = net.code(s)
    assert x.shape == (5, 4, 4, 8) and z.shape == (5, 4, 4, 16) and bool((z >= 0).all())


def test_train_cascade_is_seeded_resumes_and_leaves_the_global_rng(tmp_path):
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 64, 9, 2, 2, generator=gen)
    targets = torch.arange(64) % 2
    feats[:, targets == 1, 0] += 1
    kwargs = dict(architecture={"n_proj": 4, "n_atoms": 8, "n_steps": 2, "lam": 0.5, "dropout": 0.1,
                                              "log_eps": 1e-4}, epochs=2, batch_size=16, lr=1e-2, weight_decay=0.0,
                  label_smoothing=0.0, random_state=3, device=torch.device("cpu"))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    net, history = train_cascade(feats, targets, 2, checkpoint=Checkpoint(None, {}), **kwargs)
    assert torch.equal(torch.rand(1), before)  # the caller's generator is untouched
    assert [h["epoch"] for h in history] == [1, 2] and not net.training
    ckpt = Checkpoint(tmp_path / "c.pt", {"run": 1})
    again, _ = train_cascade(feats, targets, 2, checkpoint=ckpt, **kwargs)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    loaded, loaded_history = train_cascade(feats, targets, 2, checkpoint=ckpt, **kwargs)  # finished: no training
    assert loaded_history == history
    np.testing.assert_array_equal(loaded(feats[0]).detach().numpy(), net(feats[0]).detach().numpy())
