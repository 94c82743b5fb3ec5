import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from wavephase.data import make_polygons
from wavephase.exceptions import ChecksumError, StaleFileError
from wavephase.metrics import psnr
from wavephase.models import GaussianPixelSampler, GenerativeScattering
from wavephase.runs import Checkpoint

SMALL = dict(J=2, L=4, n_components=12, channels=(16, 8), batch_size=32, lr=5e-3, progress=False)


@pytest.fixture(scope="module")
def images():
    x, _ = make_polygons(160, size=16, random_state=0)
    return torch.from_numpy(x)


@pytest.fixture(scope="module")
def fitted(images):
    return GenerativeScattering(epochs=15, **SMALL).fit(images[:128])


def test_fit_whitens_training_embeddings_and_training_reduces_loss(fitted, images):
    z = fitted.encode(images[:128])
    assert z.shape == (128, 12) and z.dtype == torch.float32
    cov = torch.cov(z.T.double())
    torch.testing.assert_close(z.mean(0).double(), torch.zeros(12, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=2e-3, rtol=0)
    assert len(fitted.history_) == 15 and fitted.history_[-1] < 0.6 * fitted.history_[0]
    rec = fitted.reconstruct(images[:128])
    # better than the best constant image (the mean)
    base = psnr(images[:128].mean(0).expand(128, 16, 16), images[:128]).mean()
    assert float(psnr(rec, images[:128]).mean()) > float(base) + 1.0


@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_error_losses_train_a_linear_output(images, loss):
    model = GenerativeScattering(epochs=4, **{**SMALL, "loss": loss}).fit(images[:64])
    assert model.history_[-1] < model.history_[0]
    out = model.decode(torch.zeros(3, 12))
    assert out.min() >= model.data_range_[0] and out.max() <= model.data_range_[1]


def test_decode_sample_interpolate_refine_shapes_and_properties(fitted, images):
    assert fitted.decode(torch.zeros(2, 3, 12)).shape == (2, 3, 16, 16)
    s1, s2 = fitted.sample(5, random_state=1), fitted.sample(5, random_state=1)
    assert s1.shape == (5, 16, 16) and torch.equal(s1, s2)
    assert not torch.equal(s1, fitted.sample(5, random_state=2))
    assert s1.min() >= fitted.data_range_[0] and s1.max() <= fitted.data_range_[1]
    path = fitted.interpolate(images[130], images[131], steps=5)
    assert path.shape == (5, 16, 16)
    torch.testing.assert_close(path[0], fitted.reconstruct(images[130:131])[0], atol=1e-5, rtol=0)
    coarse = fitted.coarse(images[130:132])
    real = fitted.refine(coarse, n_samples=4, random_state=0)
    assert real.shape == (2, 4, 16, 16)
    assert torch.equal(real, fitted.refine(coarse, n_samples=4, random_state=0))
    # every realization's blur matches the coarse input far better than the raw decoder output's does,
    # and the realizations differ in detail
    target = coarse[:, None].expand_as(real)
    with torch.no_grad():
        raw = fitted.decode(fitted.encode(coarse))[:, None]
    err = (fitted.coarse(real) - target).norm() / target.norm()
    err_raw = (fitted.coarse(raw) - coarse[:, None]).norm() / coarse.norm()
    assert float(err) < 0.1 * float(err_raw) and float(err) < 0.05
    assert float((real[:, 0] - real[:, 1]).abs().max()) > 1e-3


def test_refine_conditions_on_the_code_the_fit_saw(fitted, images):
    # The coarse input is already blurred: refine must condition on the coarse code of the original
    # images (what the fit regressed on), not on a second blur of it.
    from wavephase.models.refinement import coarse_code, impose_lowpass

    scale = fitted._coarse_scale
    coarse = fitted.coarse(images[130:132])
    mean_z = (coarse_code(images[130:132], scale) - fitted.coarse_mean_) @ fitted.coarse_coef_
    gen = torch.Generator().manual_seed(3)
    eps = torch.randn(2, 4, fitted.n_components, generator=gen)
    with torch.no_grad():
        expected = impose_lowpass(fitted.decode(mean_z[:, None] + eps @ fitted.coarse_factor_.T), coarse[:, None],
                                  0.5 * 2**scale)
    torch.testing.assert_close(fitted.refine(coarse, n_samples=4, random_state=3), expected, atol=1e-5, rtol=0)


def test_encode_is_differentiable(fitted, images):
    x = images[:2].clone().requires_grad_(True)
    fitted.encode(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_empty_batches_give_empty_results(fitted):
    assert fitted.encode(torch.zeros(0, 16, 16)).shape == (0, 12)
    assert fitted.decode(torch.zeros(0, 12)).shape == (0, 16, 16)
    assert fitted.reconstruct(np.zeros((0, 16, 16))).shape == (0, 16, 16)
    assert fitted.sample(0).shape == (0, 16, 16)
    assert fitted.coarse(torch.zeros(0, 16, 16)).shape == (0, 16, 16)
    assert fitted.refine(torch.zeros(0, 16, 16), n_samples=3).shape == (0, 3, 16, 16)


def test_inputs_follow_the_dtype_policy(fitted, images):
    as_uint8 = (images[:3] > 0.5).to(torch.uint8).numpy()  # taken as they are, not rescaled
    torch.testing.assert_close(fitted.encode(as_uint8), fitted.encode(torch.from_numpy(as_uint8).float()))
    codes64 = fitted.encode(images[:3].double())
    assert codes64.dtype == torch.float32  # the model computes in float32
    torch.testing.assert_close(codes64, fitted.encode(images[:3]))
    assert fitted.decode(np.zeros((1, 12), dtype=np.float64)).dtype == torch.float32
    with pytest.raises(TypeError, match="bool"):
        fitted.encode(images[:3] > 0.5)
    with pytest.raises(TypeError, match="complex"):
        fitted.decode(torch.zeros(1, 12, dtype=torch.complex64))


def test_every_method_before_fit_raises_not_fitted(images):
    model = GenerativeScattering(**SMALL)
    calls = {
        "encode": lambda: model.encode(images[:2]),
        "decode": lambda: model.decode(torch.zeros(1, 12)),
        "reconstruct": lambda: model.reconstruct(images[:2]),
        "sample": lambda: model.sample(3),
        "interpolate": lambda: model.interpolate(images[0], images[1]),
        "coarse": lambda: model.coarse(images[:2]),
        "refine": lambda: model.refine(images[:2]),
    }
    for method, call in calls.items():
        with pytest.raises(NotFittedError, match=f"call fit\\(X\\) before {method}"):
            call()


def test_bad_input_raises_clear_errors(images, fitted):
    model = GenerativeScattering(epochs=1, **SMALL)
    with pytest.raises(ValueError, match="rectangular"):
        model.fit([np.zeros((16, 16)), np.zeros((16, 12))])
    with pytest.raises(ValueError, match="too small for J"):
        GenerativeScattering(**{**SMALL, "J": 5}).fit(images[:40])
    bad = images[:40].clone()
    bad[3, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(bad)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*J"):
        model.fit(torch.rand(40, 18, 18))
    with pytest.raises(ValueError, match="stack of images of shape \\(n, M, N\\)"):
        model.fit(torch.rand(16, 16))
    with pytest.raises(ValueError, match="X holds 12 images.*n_components=12"):
        model.fit(images[:12])
    with pytest.raises(ValueError, match="codes must have shape"):
        fitted.decode(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="like the training images"):
        fitted.encode(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="loss"):
        GenerativeScattering(**{**SMALL, "loss": "huber"}).fit(images[:40])
    with pytest.raises(ValueError, match="lr must be a positive number"):
        GenerativeScattering(**{**SMALL, "lr": "fast"}).fit(images[:40])
    with pytest.raises(TypeError, match="random_state"):
        GenerativeScattering(**SMALL, random_state=1.5).fit(images[:40])
    with pytest.raises(ValueError, match="device"):
        GenerativeScattering(**SMALL, device="tpu").fit(images[:40])
    with pytest.raises(ValueError, match="needs images in \\[0, 1\\].*loss='l2'"):
        GenerativeScattering(**SMALL).fit(2 * images[:40])
    with pytest.raises(TypeError, match="random_state"):
        fitted.sample(2, random_state=-0.5)


def test_fit_leaves_the_global_random_generators_untouched(images):
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    GenerativeScattering(epochs=1, **SMALL).fit(images[:40])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def _state(model):
    return {k: v.clone() for k, v in model.decoder_.state_dict().items()}


def _assert_same_model(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert a.history_ == b.history_


def test_resume_after_interruption_gives_identical_weights(images, tmp_path, monkeypatch):
    straight = GenerativeScattering(epochs=2, checkpoint=tmp_path / "a.pt", **SMALL).fit(images[:96])
    real_save = Checkpoint.save

    def save_then_die(self, state):
        real_save(self, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # stands in for a kill right after the epoch-1 checkpoint

    monkeypatch.setattr(Checkpoint, "save", save_then_die)
    interrupted = GenerativeScattering(epochs=2, checkpoint=tmp_path / "b.pt", **SMALL)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(images[:96])
    assert not hasattr(interrupted, "decoder_")  # an interrupted fit leaves no half-fitted model
    monkeypatch.setattr(Checkpoint, "save", real_save)
    resumed = GenerativeScattering(epochs=2, checkpoint=tmp_path / "b.pt", **SMALL).fit(images[:96])
    _assert_same_model(straight, resumed)
    # a finished checkpoint is reused as it is
    _assert_same_model(straight, GenerativeScattering(epochs=2, checkpoint=tmp_path / "a.pt", **SMALL).fit(images[:96]))


def test_checkpoint_of_other_data_or_settings_or_corrupt_is_refused(images, tmp_path):
    path = tmp_path / "c.pt"
    GenerativeScattering(epochs=1, checkpoint=path, **SMALL).fit(images[:64])
    # other data of the same size, other settings: refused in one line naming the file, never reused
    with pytest.raises(StaleFileError, match="c.pt was made from another configuration or other data"):
        GenerativeScattering(epochs=1, checkpoint=path, **SMALL).fit(images[1:65])
    with pytest.raises(StaleFileError, match="c.pt"):
        GenerativeScattering(epochs=1, checkpoint=path, **{**SMALL, "lr": 1e-3}).fit(images[:64])
    # settings that do not change the model (progress, device) do not invalidate it
    GenerativeScattering(epochs=1, checkpoint=path, **{**SMALL, "progress": True}).fit(images[:64])
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="c.pt is corrupt"):
        GenerativeScattering(epochs=1, checkpoint=path, **SMALL).fit(images[:64])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_during_training_resumes_from_last_checkpoint(images, tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", images[:96].numpy())
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from wavephase.models import GenerativeScattering
        from wavephase.runs import Checkpoint
        real = Checkpoint.save
        def save(self, state):
            real(self, state)
            if state["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        Checkpoint.save = save
        GenerativeScattering(epochs=3, checkpoint={str(tmp_path / 'c.pt')!r}, **{SMALL!r}).fit(
            np.load({str(tmp_path / 'x.npy')!r}))
    """)
    # same thread count as this process, so that both runs do the same float arithmetic
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, "-c", script], env=env)
    assert proc.returncode == -9
    saved, real_save = [], Checkpoint.save
    monkeypatch.setattr(Checkpoint, "save", lambda self, state: (saved.append(state["epoch"]), real_save(self, state)))
    resumed = GenerativeScattering(epochs=3, checkpoint=tmp_path / "c.pt", **SMALL).fit(images[:96])
    assert saved == [3]  # only the last epoch was trained again
    monkeypatch.setattr(Checkpoint, "save", real_save)
    straight = GenerativeScattering(epochs=3, **SMALL).fit(images[:96])
    _assert_same_model(straight, resumed)


# scikit-learn's common checks that need no data. The others feed 2-D arrays (n_samples, n_features)
# to fit; these estimators take stacks of images (n, M, N) whose sides are divisible by 2**J, so they
# cannot apply.
_INPUT_FREE_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


@pytest.mark.parametrize("check", _INPUT_FREE_CHECKS)
@pytest.mark.parametrize("estimator", [GenerativeScattering(), GaussianPixelSampler()], ids=lambda e: type(e).__name__)
def test_scikit_learn_checks_that_need_no_data(estimator, check):
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_clone_gives_an_unfitted_copy_with_the_same_settings(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "decoder_")


def test_mixture_prior_samples_reproducibly_and_fits_the_held_out_codes_better(images):
    from wavephase.models.code_prior import code_log_likelihood

    model = GenerativeScattering(epochs=2, prior="mixture", prior_components=3, **SMALL).fit(images[:128])
    assert model.prior_ is not None and model.prior_["means"].shape == (3, 12)
    assert 0 <= model.prior_seconds_ <= model.train_seconds_
    s1 = model.sample(6, random_state=4)
    assert s1.shape == (6, 16, 16) and torch.equal(s1, model.sample(6, random_state=4))
    held_out = model.encode(images[128:]).detach()
    assert code_log_likelihood(model.prior_, held_out) > code_log_likelihood(None, held_out)
    assert GenerativeScattering(epochs=1, **SMALL).fit(images[:64]).prior_ is None
    with pytest.raises(ValueError, match="prior must be"):
        GenerativeScattering(prior="flow", **SMALL).fit(images[:40])
    with pytest.raises(ValueError, match="prior_components"):
        GenerativeScattering(prior="mixture", prior_components=0, **SMALL).fit(images[:40])
