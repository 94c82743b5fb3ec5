import math

import pytest
import torch

from wavephase import Scattering2D
from wavephase.filters import morlet_bank
from wavephase.scattering.fourier import FilterBlocks, kymatio_level, paired, periodized_product
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

    x_hat = torch.fft.fft2(S._pad(x))
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
    keys = [tuple(r) for r in torch.cat([meta["j"], meta["theta"]], 1)[order2][:, [0, 2, 1, 3]].tolist()]
    assert keys == sorted(keys)
    assert torch.isnan(meta["angle"][0]).all() and not torch.isnan(meta["angle"][1, 0])
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


@pytest.mark.parametrize("is_paired", [False, True])
def test_periodized_product_real_filters_match_complex_filters(is_paired):
    # Real filters take the (re, im)-pair path; complex filters the plain complex product.
    g = torch.Generator().manual_seed(3)
    filters = torch.rand(3, 16, 12, generator=g, dtype=torch.float64)
    blocks = FilterBlocks(filters, 4)
    x_hat = torch.randn(2, 1, 16, 12, generator=g, dtype=torch.complex128, requires_grad=True)
    values = paired(blocks.values) if is_paired else blocks.values
    y = periodized_product(x_hat, blocks, values, is_paired=is_paired)
    ref = periodized_product(x_hat, blocks, blocks.values.to(torch.complex128))
    assert y.shape == ref.shape == (2, 3, 4, 3)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn(y.shape, generator=g, dtype=torch.complex128)
    (grad,) = torch.autograd.grad((y * w.conj()).real.sum(), x_hat)
    (grad_ref,) = torch.autograd.grad((ref * w.conj()).real.sum(), x_hat)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


def test_filter_blocks_drop_negligible_values_and_crop_to_their_support():
    bank = morlet_bank((64, 64), 3, 4, dtype=torch.float64)
    blocks = FilterBlocks(bank.psi[2], 4)
    values = blocks.values
    peak = values.abs().amax()
    nonzero = values[values != 0].abs()
    # Tails below the tolerance are exact zeros (no float32 denormals left to slow products).
    assert (nonzero > 1e-9 * peak).all() and (values.float()[values != 0].abs() > torch.finfo(torch.float32).tiny).all()
    assert len(blocks.crops) == len(blocks.index) and blocks.k == 4
    for b, (r0, r1, c0, c1) in enumerate(blocks.crops):
        inside = torch.zeros_like(values[b], dtype=torch.bool)
        inside[..., r0:r1, c0:c1] = True
        assert (values[b][~inside] == 0).all() and (values[b][inside] != 0).any()
    areas = [(r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in blocks.crops]
    assert areas == sorted(areas, reverse=True) and areas[-1] < areas[0]


@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_reused_buffers_across_chunks_give_the_same_coefficients(backend):
    # Without autograd both paths reuse their buffers from chunk to chunk.
    x = torch.randn(5, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    one_chunk = Scattering2D(2, (40, 40), L=4, dtype=torch.float64, backend=backend)
    chunked = Scattering2D(2, (40, 40), L=4, dtype=torch.float64, backend=backend, chunk_bytes=1)
    with torch.no_grad():
        expected = one_chunk(x)
        got = chunked(x)
    # Chunks change GEMM sizes, hence the summation order: equal to rounding.
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    xg = x.clone().requires_grad_(True)
    with_graph = chunked(xg)
    torch.testing.assert_close(with_graph.detach(), got, rtol=1e-12, atol=1e-14)
    (grad,) = torch.autograd.grad(with_graph.sum(), xg)
    (grad_one,) = torch.autograd.grad(one_chunk(xg).sum(), xg)
    torch.testing.assert_close(grad, grad_one, rtol=1e-12, atol=1e-14)


def test_workspace_hands_out_one_block_of_memory_per_key():
    from wavephase.scattering.fourier import Workspace

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


def test_modulus_is_exact_for_huge_and_tiny_values():
    from wavephase.scattering.fourier import modulus

    z = torch.tensor([3e20 + 4e20j, 3e-20 + 4e-20j, 0j, 3 + 4j], dtype=torch.complex64)
    out = modulus(z)
    expected = torch.tensor([5e20, 5e-20, 0.0, 5.0])
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-25)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_default_lowpass_is_applied_as_one_separable_term(dtype, backend):
    # The Gaussian low-pass is separable; built from float32-rounded values it would
    # not be, and every low-pass would cost 6-10 matrix-product pairs instead of one.
    S = Scattering2D(2, (28, 28), L=4, dtype=dtype, backend=backend)
    owner = S._dense if backend == "matmul" else S
    ranks = {name: buf.shape[0] for name, buf in owner.named_buffers() if "_phi_rows" in name}
    assert ranks and set(ranks.values()) == {1}, ranks
