import math

import numpy as np
import pytest
import torch

from wavephase import Scattering2D
from wavephase.filters import morlet_bank
from wavephase.scattering.matrices import reflect_indices
from wavephase.scattering.periodize import kymatio_level
from wavephase.testing import assert_covariant, assert_invariant, check_operator, image_inputs, relative_error


def naive_scattering(x, J, L):
    """Reference: full-size Fourier products, reshape-mean subsampling, one filter at a time."""
    S = Scattering2D(J, tuple(x.shape[-2:]), L=L, dtype=torch.float64)
    bank = morlet_bank(S.padded_shape, J, L, dtype=torch.float64)

    def sub(y, k):
        M, N = y.shape[-2:]
        return y.reshape(*y.shape[:-2], k, M // k, k, N // k).mean((-4, -2))

    def low(u_hat, r):
        return torch.fft.ifft2(sub(u_hat * kymatio_level(bank.phi, r), 2 ** (J - r))).real[..., 1:-1, 1:-1]

    (M, N), (Mp, Np) = x.shape[-2:], S.padded_shape
    rows = reflect_indices(M, (Mp - M) // 2, Mp - M - (Mp - M) // 2)
    cols = reflect_indices(N, (Np - N) // 2, Np - N - (Np - N) // 2)
    x_hat = torch.fft.fft2(x[..., rows, :][..., cols])
    out = [low(x_hat, 0)]
    order2 = []
    for j1 in range(J):
        for t1 in range(L):
            u1_hat = torch.fft.fft2(torch.fft.ifft2(sub(x_hat * bank.psi[j1, t1], 2**j1)).abs())
            out.append(low(u1_hat, j1))
            for j2 in range(j1 + 1, J):
                for t2 in range(L):
                    filt = kymatio_level(bank.psi[j2, t2], j1)
                    u2 = torch.fft.ifft2(sub(u1_hat * filt, 2 ** (j2 - j1))).abs()
                    order2.append(low(torch.fft.fft2(u2), j2))
    return torch.stack(out + order2, dim=-3)


@pytest.mark.parametrize("backend", ["fft", "matmul"])
@pytest.mark.parametrize("J,shape,L", [(2, (28, 28), 8), (3, (40, 32), 4), (1, (9, 13), 6), (3, (8, 8), 2)])
def test_matches_naive_per_filter_algorithm(J, shape, L, backend):
    x = torch.randn(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = Scattering2D(J, shape, L=L, dtype=torch.float64, backend=backend)(x)
    # blocks below 1e-9 of a filter's peak are skipped by design
    assert relative_error(ours, naive_scattering(x, J, L)) < 1e-9


def test_output_shape_channels_and_meta():
    J, L = 3, 8
    S = Scattering2D(J, (64, 48), L=L)
    out = S(torch.randn(5, 64, 48))
    C = 1 + L * J + L * L * J * (J - 1) // 2
    assert out.shape == (5, C, 8, 6) and S.output_channels == C
    meta = S.meta()
    assert meta["order"].shape == (C,)
    assert (meta["order"] == 0).sum() == 1 and (meta["order"] == 1).sum() == L * J
    order2 = meta["order"] == 2
    assert (meta["j"][order2, 1] > meta["j"][order2, 0]).all()
    # order 2 sorted by (j1, theta1) then (j2, theta2), as in Kymatio
    keys = [tuple(r) for r in np.concatenate([meta["j"], meta["theta"]], 1)[order2][:, [0, 2, 1, 3]].tolist()]
    assert keys == sorted(keys)
    assert np.isnan(meta["angle"][0]).all() and not np.isnan(meta["angle"][1, 0])
    assert all(isinstance(v, np.ndarray) and len(v) == C for v in meta.values())
    assert meta["order"].dtype == np.int64 and meta["angle"].dtype == np.float64
    torch.testing.assert_close(torch.from_numpy(meta["angle"][1:1 + L, 0]), S.bank.theta.double())
    S1 = Scattering2D(J, (64, 48), L=L, max_order=1)
    assert S1(torch.randn(64, 48)).shape == (1 + L * J, 8, 6)
    assert torch.allclose(S1(out.new_ones(64, 48)), S(out.new_ones(64, 48))[: 1 + L * J])


@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_common_operator_checks(backend):
    check_operator(lambda: Scattering2D(2, (8, 8), L=2, backend=backend), image_inputs((8, 8)))
    check_operator(lambda: Scattering2D(2, (16, 12), L=4, backend=backend), image_inputs((16, 12)),
                   gradcheck=False)


@pytest.mark.parametrize("kwargs", [
    dict(J=2, shape=(28, 28), L=8),
    dict(J=3, shape=(30, 21), L=5, pad_mode="zeros"),
    dict(J=1, shape=(7, 12), L=3, max_order=1),
    dict(J=2, shape=(16, 20), L=4, rotation="fourier"),
])
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_matmul_and_fft_backends_agree(kwargs, dtype, rtol):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, *kwargs["shape"], dtype=dtype, generator=gen)
    weights = torch.randn(Scattering2D(**kwargs).output_channels, dtype=dtype, generator=gen)
    outputs, grads = [], []
    for backend in ("fft", "matmul"):
        S = Scattering2D(**kwargs, dtype=dtype, backend=backend)
        assert S.backend == backend
        xg = x.clone().requires_grad_(True)
        out = S(xg)
        (out * weights[:, None, None]).sum().backward()
        outputs.append(out.detach())
        grads.append(xg.grad)
    assert relative_error(outputs[1], outputs[0]) < rtol
    assert relative_error(grads[1], grads[0]) < 10 * rtol


def test_auto_backend_follows_padded_size():
    assert Scattering2D(2, (28, 28)).backend == "matmul"  # padded to 36 x 36
    assert Scattering2D(3, (32, 32)).backend == "matmul"  # 48 x 48
    assert Scattering2D(2, (28, 80)).backend == "fft"  # 36 x 88


def test_gradient_at_zero_is_finite_and_zero():
    x = torch.zeros(32, 32, requires_grad=True)
    Scattering2D(3, (32, 32)).forward(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_any_batch_shape():
    S = Scattering2D(2, (16, 16), L=4)
    x = torch.randn(2, 3, 4, 16, 16)
    out = S(x)
    assert out.shape[:3] == (2, 3, 4)
    assert torch.allclose(out[1, 2, 3], S(x[1, 2, 3]), atol=1e-6)


def bump_field(M, seed, width):
    u = torch.arange(M, dtype=torch.float64)
    noise = torch.randn(M, M, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return noise * torch.exp(-((u[:, None] - M / 2) ** 2 + (u[None, :] - M / 2) ** 2) / (2 * width**2))


def test_translation_invariance_up_to_scale():
    x = bump_field(128, 0, 14.0)
    S3, S5 = (Scattering2D(J, (128, 128), dtype=torch.float64) for J in (3, 5))

    def shifted(s):
        return torch.roll(x, (s, s), (-2, -1))

    err5 = [relative_error(S5(shifted(s)), S5(x)) for s in (1, 2, 4)]
    err3 = relative_error(S3(shifted(1)), S3(x))
    # Lipschitz in the shift relative to 2^J: small, ~linear, and smaller for larger J.
    assert err5[0] < 0.05 and err5[0] < err3 / 2
    assert 1.6 < err5[1] / err5[0] < 2.4 and 1.6 < err5[2] / err5[1] < 2.4
    # Spatially summed coefficients are invariant to shifts well below 2^J.
    assert relative_error(S5(shifted(2)).sum((-2, -1)), S5(x).sum((-2, -1))) < 0.01


def rotate_about_origin(y):
    """Rotation by 90 degrees that maps the 2^J subsampling grid onto itself."""
    return torch.roll(torch.rot90(y, 1, (-2, -1)), 1, -2)


def test_rotation_by_90_degrees_permutes_angles():
    L, J = 8, 2
    S = Scattering2D(J, (64, 64), L=L, pad_mode="zeros", dtype=torch.float64)
    x = bump_field(64, 3, 8.0)
    meta = S.meta()
    keys = list(zip(meta["order"].tolist(), *zip(*meta["j"].tolist()), *zip(*meta["theta"].tolist())))
    index = {key: i for i, key in enumerate(keys)}

    def rotate_channels(s):
        # pi/2 = (L/2) * (pi/L); the angles are defined modulo pi
        perm = [index[(o, j1, j2, (t1 + L // 2) % L if t1 >= 0 else -1, (t2 + L // 2) % L if t2 >= 0 else -1)]
                for o, j1, j2, t1, t2 in keys]
        return rotate_about_origin(s[..., perm, :, :])

    # Not exact only because Kymatio's band masks keep -h but not +h at coarse levels.
    assert_covariant(S, x, rotate_about_origin, rotate_channels, rtol=3e-3)
    wrong = relative_error(S(rotate_about_origin(x)), rotate_about_origin(S(x)))
    assert wrong > 0.1  # without the channel permutation it is not covariant


@pytest.mark.parametrize("mode", ["average", "fourier"])
def test_rotation_pooled_output_is_invariant_to_90_degree_rotations(mode):
    L, J = 4, 3
    S = Scattering2D(J, (64, 64), L=L, rotation=mode, pad_mode="zeros", dtype=torch.float64)
    x = bump_field(64, 4, 8.0)
    out = S(x)
    assert out.shape[-3] == S.output_channels == S.meta()["order"].shape[0]
    assert relative_error(S(rotate_about_origin(x)), rotate_about_origin(out)) < 3e-3


def test_float32_and_float64_agree():
    x = torch.randn(3, 40, 40, dtype=torch.float64)
    s64 = Scattering2D(3, (40, 40), dtype=torch.float64)(x)
    s32 = Scattering2D(3, (40, 40))(x.float())
    assert s32.dtype == torch.float32
    assert relative_error(s32.double(), s64) < 1e-5


def test_zero_padding_mode_and_module_dtype_cast():
    S = Scattering2D(2, (16, 16), L=4, pad_mode="zeros")
    out = S(torch.ones(16, 16))
    assert torch.isfinite(out).all()
    assert S.double()(torch.ones(16, 16, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(J=0, shape=(8, 8)), ValueError, "J"),
    (dict(J=4, shape=(8, 8)), ValueError, "too small"),
    (dict(J=2, shape=(8, 8), max_order=3), ValueError, "max_order"),
    (dict(J=2, shape=(8, 8), pad_mode="edge"), ValueError, "pad_mode"),
    (dict(J=2, shape=(8, 8), rotation="max"), ValueError, "rotation"),
    (dict(J=2, shape=(8, 8), dtype=torch.float16), TypeError, "dtype"),
    (dict(J=2, shape=(8, 8), backend="cuda"), ValueError, "backend"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Scattering2D(**kwargs)


def test_bad_inputs():
    S = Scattering2D(2, (16, 16), L=2)
    with pytest.raises(ValueError, match="spatial shape"):
        S(torch.zeros(16, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        S([[0.0] * 16] * 16)
    with pytest.raises(ValueError, match="non-finite"):
        S(torch.full((16, 16), math.inf))
    with pytest.raises(TypeError, match="float32 or float64"):
        S(torch.zeros(16, 16, dtype=torch.float16))


def test_mismatched_device_is_reported():
    S = Scattering2D(2, (16, 16), L=2)
    x = torch.zeros(16, 16, device="meta")
    with pytest.raises(ValueError, match="device"):
        S(x)




@pytest.mark.parametrize("backend", ["fft", "matmul"])
@pytest.mark.parametrize("batch", [(0,), (2, 0), (0, 3)])
def test_empty_batch_gives_an_empty_result(backend, batch):
    S = Scattering2D(2, (12, 12), L=4, rotation="average", backend=backend)
    x = torch.zeros(*batch, 12, 12, dtype=torch.float64, requires_grad=True)
    out = S(x)
    assert out.shape == (*batch, S.output_channels, 3, 3) and out.dtype == torch.float64
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_module_precision_follows_double_and_input(backend):
    x = torch.randn(2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    S = Scattering2D(2, (16, 16), L=4, backend=backend)
    assert all(b.dtype == torch.float32 for b in S.buffers() if b.is_floating_point())
    S.double()
    assert all(b.dtype == torch.float64 for b in S.buffers() if b.is_floating_point())
    assert S(x).dtype == torch.float64 and S(x.float()).dtype == torch.float32


@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_second_derivatives_are_exact(backend):
    # order 2 included: the recorded backward pass sees how both moduli depend on the input
    S = Scattering2D(2, (8, 8), L=2, dtype=torch.float64, backend=backend)
    x = torch.randn(1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradgradcheck(S, (x,))
