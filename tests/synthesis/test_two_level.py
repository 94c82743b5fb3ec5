"""The two-level moment (Pearson's gap) and the continuation stages of synthesize."""

from __future__ import annotations

import pytest
import torch

from wavephase.physics import ising
from wavephase.synthesis import synthesize
from wavephase.synthesis.two_level import check_two_level, pearson_gap, two_level_loss


def test_pearson_gap_is_zero_exactly_for_two_values():
    gen = torch.Generator().manual_seed(0)
    for p in (0.5, 0.1, 0.93):  # any proportions, any two levels
        x = torch.where(torch.rand(3, 32, 32, generator=gen) < p, 2.5, -0.7).double()
        assert float(pearson_gap(x).abs().max()) < 1e-12
    noise = torch.randn(4, 32, 32, generator=gen, dtype=torch.float64)
    gap = pearson_gap(noise)
    assert gap.shape == (4,) and bool((gap > 1.5).all())  # a Gaussian's gap is 2 (kurtosis 3, skewness 0)
    # a moment of the standardised values: unchanged by x -> a x + b, a != 0
    torch.testing.assert_close(pearson_gap(-3.0 * noise + 7.0), gap)
    # three levels are not two
    three = torch.tensor([-1.0, 0.0, 1.0]).repeat(3 * 32 * 32 // 3 + 1)[:3 * 32 * 32].reshape(3, 32, 32)
    assert bool((pearson_gap(three.double()) > 0.4).all())


def test_two_level_loss_grows_with_the_spread_and_has_a_gradient():
    gen = torch.Generator().manual_seed(1)
    spins = torch.where(torch.rand(2, 16, 16, generator=gen) < 0.5, 1.0, -1.0).double()
    target = pearson_gap(spins).mean()
    losses = []
    for spread in (0.01, 0.05, 0.2):
        x = (spins * (1 + spread * torch.randn(2, 16, 16, generator=gen, dtype=torch.float64))).requires_grad_()
        loss = two_level_loss(x, target, 2.0)
        loss.backward()
        assert torch.isfinite(x.grad).all()
        losses.append(float(loss.detach()))
    assert losses[0] < losses[1] < losses[2]
    # quadratic, not quartic, in the spread about the two levels
    assert 5 < losses[1] / losses[0] < 50


@pytest.mark.parametrize("weights, steps, match", [
    ((0.1, -1.0), 10, "positive finite"),
    ((0.1, float("nan")), 10, "positive finite"),
    ("0.1", 10, "sequence"),
    ((0.1,), 0, "two_level_steps"),
    ((True,), 10, "positive finite"),
])
def test_bad_two_level(weights, steps, match):
    with pytest.raises(ValueError, match=match):
        check_two_level(weights, steps)
    with pytest.raises(ValueError, match=match):
        synthesize(torch.randn(32, 32), steps=1, progress=False, two_level=weights, two_level_steps=steps)


def test_no_stage_changes_nothing():
    assert check_two_level(None, 0) == () and check_two_level([], 0) == ()


@pytest.fixture(scope="module")
def spins():
    return ising(32, 1, random_state=3, progress=False)


def test_stages_make_a_synthesis_of_spins_two_valued(spins):
    kw = dict(n_samples=2, steps=30, J=3, match="sign", precondition=False, progress=False, random_state=0)
    grey = synthesize(spins, **kw)
    staged = synthesize(spins, two_level=(0.1, 1.0, 10.0), two_level_steps=40, **kw)
    assert staged.steps_done > grey.steps_done and len(staged.loss_history) > len(grey.loss_history)
    assert float(pearson_gap(staged.fields.double()).max()) < 0.2 * float(pearson_gap(grey.fields.double()).min())
    # the values gather at the target's two levels +-1
    near = ((staged.fields.abs() - 1).abs() < 0.25).double().mean()
    assert float(near) > 0.9


def test_stages_resume_after_a_kill_to_the_uninterrupted_fields(spins, tmp_path):
    kw = dict(n_samples=1, steps=8, J=3, match="sign", precondition=False, progress=False, random_state=1,
              checkpoint_every=4, two_level=(0.1, 1.0), two_level_steps=8)
    full = synthesize(spins, **kw)
    ck = tmp_path / "c.pt"

    def kill(done: int, loss: float) -> None:
        if done >= 12:  # in the first stage
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthesize(spins, checkpoint=ck, callback=kill, **kw)
    resumed = synthesize(spins, checkpoint=ck, **kw)
    assert resumed.resumed and resumed.steps_done == full.steps_done
    torch.testing.assert_close(resumed.fields, full.fields, rtol=1e-5, atol=1e-5)
    assert resumed.loss_history == pytest.approx(full.loss_history, rel=1e-5)


def test_a_stage_that_stalls_hands_over_to_the_next():
    # an 8x8 field with J=1 stalls long before its budgets, in every stage
    small = ising(8, 1, random_state=3, progress=False)
    kw = dict(n_samples=1, steps=2000, J=1, L=2, match="sign", precondition=False, progress=False, random_state=0,
              checkpoint_every=50, dtype=torch.float64)
    plain = synthesize(small, **kw)
    staged = synthesize(small, two_level=(0.1, 1.0), two_level_steps=2000, **kw)
    assert plain.steps_done < 2000
    # the moment matching is the same run up to its stall, then both stages follow it, each stalling too
    n = len(plain.loss_history)
    assert staged.loss_history[:n] == plain.loss_history
    assert plain.steps_done + 2 <= staged.steps_done < plain.steps_done + 2 * 2000
    assert float(pearson_gap(staged.fields)) < 0.1 * float(pearson_gap(plain.fields))
