"""Tests of the solid-harmonic 3D scattering of molecules."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from wavephase import SolidHarmonicScattering3D
from wavephase.exceptions import ResourceLimitError
from wavephase.scattering._grid3d import flush_denormals, hermite_filters
from wavephase.scattering.solid_harmonics import real_solid_harmonics, solid_harmonic_response
from wavephase.testing import assert_invariant, random_molecule, random_rotation, relative_error

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


SMALL = dict(J=1, L=2, qs=(0.5, 1.0, 2.0, 3.0), grid_step=0.7, margin=4.0)


def test_hermite_filters_are_scaled_gaussian_derivatives() -> None:
    """Entry ``a`` is ``h1 (-s d/dt)^a g_s(t2 - t1)``, checked with autograd derivatives."""
    n1, k2, h1, h2, s, order = 9, 3, 0.3, 0.7, 1.3, 4
    filters = hermite_filters(n1, k2, h1, h2, s, order, F64, torch.device("cpu"))
    assert filters.shape == (order + 1, 2 * k2 + 1, n1)
    t1 = h1 * (torch.arange(n1, dtype=F64) - (n1 - 1) // 2)
    t2 = h2 * torch.arange(-k2, k2 + 1, dtype=F64)
    t = (t2[:, None] - t1[None, :]).requires_grad_(True)
    f = h1 * torch.exp(-t * t / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)
    for a in range(order + 1):
        assert torch.allclose(filters[a], f.detach(), rtol=1e-12, atol=1e-14), a
        (grad,) = torch.autograd.grad(f.sum(), t, create_graph=True)
        f = -s * grad


@pytest.mark.parametrize("before", [False, True])
def test_flush_denormals_restores_previous_mode(before: bool) -> None:
    def flushing() -> bool:
        return bool(torch.tensor(1e-30, dtype=torch.float32) / 1e10 == 0)

    if not torch.set_flush_denormal(before):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert flushing() == before
        with flush_denormals(torch.device("cpu")):
            assert flushing()
        assert flushing() == before
    finally:
        torch.set_flush_denormal(False)


# ------------------------------------------------------------ coefficients
def _brute_force_coefficients(pos: torch.Tensor, z: torch.Tensor, S: SolidHarmonicScattering3D,
                              h: float, n: int) -> dict:
    """First and second order (j1=0, j2=1) integrals with dense fields and FFT convolutions."""
    t = (torch.arange(n, dtype=F64) - n // 2) * h
    grid = torch.stack(torch.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3)
    s1, s2 = S.scales()[0], S.scales()[1]
    fields = solid_harmonic_response(pos, z, grid, s1, S.sigma, S.L)
    offsets = torch.fft.ifftshift(grid.reshape(n, n, n, 3), dim=(0, 1, 2))
    harm = real_solid_harmonics(offsets, S.L)
    gauss = torch.exp(-(offsets**2).sum(-1) / (2 * s2**2)) * (2 * math.pi) ** -1.5
    out = {}
    for l in range(S.L + 1):
        u1 = fields[:, l * l:(l + 1) ** 2].norm(dim=-1)
        psi = (harm[..., l * l:(l + 1) ** 2] * gauss[..., None] * s2 ** (-3 - l)).permute(3, 0, 1, 2)
        w = torch.fft.ifftn(torch.fft.fftn(u1.reshape(n, n, n)) * torch.fft.fftn(psi, dim=(1, 2, 3)),
                            dim=(1, 2, 3)).real * h**3
        u2 = w.norm(dim=0)
        for q in S.qs:
            out[(1, 0, l, q)] = float((u1**q).sum() * h**3)
            out[(2, 0, l, q)] = float((u2**q).sum() * h**3)
    return out


@pytest.mark.slow
def test_first_and_second_order_match_brute_force() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.2, 0.0], [-0.4, 1.0, 0.3]], dtype=F64)
    z = torch.tensor([6.0, 1.0, 8.0], dtype=F64)
    S = SolidHarmonicScattering3D(J=1, L=2, sigma=0.3, scale0=0.5, channels=("full",), grid_step=0.35,
                                  margin=7.0, modulus_eps=0.0, align=False)
    out = S(pos, z)
    ref = _brute_force_coefficients(pos, z, S, h=0.125, n=128)
    meta = S.meta()
    checked = 0
    for i in range(S.output_size):
        key = (int(meta["order"][i]), int(meta["j1"][i]), int(meta["l1"][i]), float(meta["q"][i]))
        if key in ref:
            assert abs(float(out[i]) / ref[key] - 1) < 2e-4, (key, float(out[i]), ref[key])
            checked += 1
    assert checked == 2 * 3 * len(S.qs)


# ---------------------------------------------------------------- symmetries
@pytest.mark.parametrize("align", [True, False])
def test_rotation_translation_permutation_invariance(align: bool) -> None:
    pos, z = random_molecule(6, random_state=1)
    kwargs = dict(SMALL, grid_step=0.7 if align else 0.45, margin=5.0)
    S = SolidHarmonicScattering3D(align=align, **kwargs)
    rot, shift = random_rotation(3), torch.tensor([0.7, -1.3, 2.1], dtype=F64)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(4))
    # With the principal frame the quadrature itself is invariant; without it the
    # invariance is that of the quadrature (about 1e-4 at grid_step 0.45).
    rtol = 1e-5 if align else 2e-4
    assert_invariant(lambda x: S(x, z), pos, lambda x: x @ rot.T + shift, rtol)
    assert_invariant(lambda x: S(x, z), pos, lambda x: x + shift, 1e-10)
    torch.testing.assert_close(S(pos[perm], z[perm]), S(pos, z), rtol=1e-10, atol=0)


def test_reflection_invariance() -> None:
    pos, z = random_molecule(7, random_state=2)
    S = SolidHarmonicScattering3D(**SMALL)
    flip = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=F64))
    assert relative_error(S(pos @ flip, z), S(pos, z)) < 1e-10


def test_padding_atoms_change_nothing() -> None:
    pos, z = random_molecule(6, random_state=5)
    S = SolidHarmonicScattering3D(**SMALL)
    gen = torch.Generator().manual_seed(0)
    pad = torch.randn(4, 3, generator=gen, dtype=F64) * 20
    padded_pos = torch.cat([pad[:2], pos, pad[2:]])
    padded_z = torch.cat([torch.zeros(2, dtype=F64), z, torch.zeros(2, dtype=F64)])
    torch.testing.assert_close(S(padded_pos, padded_z), S(pos, z), rtol=1e-11, atol=0)


def test_batch_shapes_and_batch_independence() -> None:
    S = SolidHarmonicScattering3D(chunk_size=2, **SMALL)
    mols = [random_molecule(n, random_state=10 + n) for n in (3, 6, 4)]
    A = 6
    pos = torch.zeros(3, A, 3, dtype=F64)
    z = torch.zeros(3, A, dtype=F64)
    for i, (p, c) in enumerate(mols):
        pos[i, : len(c)], z[i, : len(c)] = p, c
    batched = S(pos, z)
    assert batched.shape == (3, S.output_size)
    for i, (p, c) in enumerate(mols):
        # A molecule's coefficients do not depend on the molecules sharing its chunk.
        assert relative_error(batched[i], S(p, c)) < 1e-10
    nested = S(pos.reshape(3, 1, A, 3).expand(3, 2, A, 3), z.reshape(3, 1, A).expand(3, 2, A))
    assert nested.shape == (3, 2, S.output_size)
    assert relative_error(nested[:, 1], batched) < 1e-6


def test_float32_agrees_with_float64() -> None:
    pos, z = random_molecule(8, random_state=6)
    out64 = SolidHarmonicScattering3D(**SMALL)(pos, z)
    out32 = SolidHarmonicScattering3D(**SMALL)(pos.float(), z.float())
    assert out32.dtype == torch.float32
    rel = ((out32.double() - out64).abs() / out64.abs()).max()
    assert rel < 1e-3, float(rel)


def test_meta_and_output_size() -> None:
    J, L, qs = 3, 2, (0.5, 2.0)
    S = SolidHarmonicScattering3D(J=J, L=L, qs=qs)
    meta = S.meta()
    n_per_channel = len(qs) * (1 + (J + 1) * (L + 1) + J * (J + 1) // 2 * (L + 1))
    assert S.output_size == 3 * n_per_channel == len(meta["order"])
    assert set(meta) == {"order", "channel", "j1", "l1", "j2", "l2", "q"}
    order2 = meta["order"] == 2
    assert (meta["j2"][order2] > meta["j1"][order2]).all() and (meta["l2"][order2] == meta["l1"][order2]).all()
    assert (meta["j1"][meta["order"] == 0] == -1).all()
    assert list(dict.fromkeys(meta["channel"])) == ["full", "valence", "core"]
    S1 = SolidHarmonicScattering3D(J=J, L=L, qs=qs, max_order=1, channels=("valence",))
    assert S1.output_size == len(qs) * (1 + (J + 1) * (L + 1))
    pos, z = random_molecule(4, random_state=0, dtype=torch.float32)
    assert S1(pos, z).shape == (S1.output_size,)


def test_order_zero_is_exact() -> None:
    pos, z = random_molecule(5, random_state=8)
    S = SolidHarmonicScattering3D(J=0, L=0, qs=(0.5, 2.0), max_order=0)
    val = torch.tensor([{1: 1, 6: 4, 7: 5, 8: 6}[int(c)] for c in z], dtype=F64)
    expected = torch.cat([torch.stack([(w**q).sum() for q in (0.5, 2.0)]) for w in (z, val, z - val)])
    torch.testing.assert_close(S(pos, z), expected)


# ------------------------------------------------------------------ gradients
def test_gradcheck_tiny_molecule() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.3, -0.2], [-0.4, 0.9, 0.5]], dtype=F64, requires_grad=True)
    z = torch.tensor([8.0, 1.0, 1.0], dtype=F64)
    S = SolidHarmonicScattering3D(J=1, L=1, qs=(0.5, 3.0), channels=("full",), grid_step=1.0, margin=3.5,
                                  align=False)
    assert torch.autograd.gradcheck(lambda x: S(x, z), (pos,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_aligned_gradient_close_to_finite_differences() -> None:
    pos, z = random_molecule(4, random_state=9)
    S = SolidHarmonicScattering3D(**SMALL)
    pos = pos.clone().requires_grad_(True)
    weights = torch.linspace(0.5, 1.5, S.output_size, dtype=F64)
    energy = (S(pos, z) / S(pos, z).detach().abs() * weights).sum()
    (grad,) = torch.autograd.grad(energy, pos)
    direction = torch.randn(pos.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    ref = S(pos.detach(), z).abs()
    eps = 1e-5

    def f(x: torch.Tensor) -> torch.Tensor:
        return (S(x, z) / ref * weights).sum()

    fd = (f(pos.detach() + eps * direction) - f(pos.detach() - eps * direction)) / (2 * eps)
    assert abs(float(fd) - float((grad * direction).sum())) < 1e-6 * max(1.0, abs(float(fd)))
    # Exact translation and rotation invariance: no net force, no torque.
    assert float(grad.sum(0).norm()) < 1e-8 * float(grad.norm())
    assert float(torch.linalg.cross(pos.detach(), grad).sum(0).norm()) < 1e-8 * float(grad.norm())


@pytest.mark.parametrize("eps", [1e-5, 0.0])
def test_finite_gradients_with_atoms_on_grid_points(eps: float) -> None:
    """Centro-symmetric molecule with atoms on grid points: odd-l fields vanish at grid points."""
    S = SolidHarmonicScattering3D(J=1, L=3, align=False, modulus_eps=eps)
    h = S.grid_step * S.widths()[0]
    pos = torch.tensor([[-2 * h, 0.0, 0.0], [2 * h, 0.0, 0.0], [0.0, 3 * h, 0.0], [0.0, -3 * h, 0.0]],
                       dtype=F64, requires_grad=True)
    z = torch.tensor([6.0, 6.0, 1.0, 1.0], dtype=F64)
    out = S(pos, z)
    assert torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out.sum(), pos)
    assert torch.isfinite(grad).all()
    if eps == 0:
        return  # exact modulus: U^q is a cone at the zero, its subgradient there is arbitrary
    # The mirror x -> -x swaps atoms 0 and 1, so their forces are mirror images.
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=F64)
    torch.testing.assert_close(grad[0], grad[1] * mirror, rtol=1e-6, atol=1e-8 * float(grad.abs().max()))


def test_single_atom() -> None:
    S = SolidHarmonicScattering3D(**SMALL)
    out = S(torch.tensor([[0.3, 0.1, -0.2]], dtype=F64), torch.tensor([6.0], dtype=F64))
    assert torch.isfinite(out).all() and out.shape == (S.output_size,)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "positions, charges, error, match",
    [
        (torch.zeros(2, 3), torch.tensor([6.0, 2.0]), ValueError, "valence"),
        (torch.tensor([[0.0, 0.0, float("nan")], [1.0, 0.0, 0.0]]), torch.tensor([6.0, 1.0]), ValueError, "NaN"),
        (torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([6.0, 1.0]), ValueError, "distance 0"),
        (torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([0.0, 0.0]), ValueError, "empty"),
        (torch.zeros(3, 3), torch.tensor([6.0, 1.0]), ValueError, "charges must have shape"),
        (torch.zeros(3, 2), torch.tensor([6.0, 1.0, 1.0]), ValueError, r"\(\.\.\., A, 3\)"),
        (torch.zeros(2, 3, dtype=torch.int64), torch.tensor([6.0, 1.0]), TypeError, "positions"),
        (torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([6.5, 1.0]), ValueError, "integer"),
    ],
)
def test_bad_input(positions: torch.Tensor, charges: torch.Tensor, error: type, match: str) -> None:
    S = SolidHarmonicScattering3D(J=1, L=1)
    with pytest.raises(error, match=match):
        S(positions, charges)


def test_custom_valence_map_accepts_new_element() -> None:
    S = SolidHarmonicScattering3D(J=1, L=1, max_order=1, valence={1: 1, 6: 4, 16: 6})
    out = S(torch.tensor([[0.0, 0.0, 0.0], [1.8, 0.0, 0.0]], dtype=F64), torch.tensor([16.0, 6.0], dtype=F64))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kwargs", [dict(J=-1), dict(L=9), dict(qs=()), dict(qs=(0.0,)), dict(sigma=-1.0),
                                    dict(channels=("spin",)), dict(max_order=3), dict(grid_step=0.0),
                                    dict(valence={6: 7})])
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SolidHarmonicScattering3D(**kwargs)


def test_defaults_work_on_qm9_sized_molecule() -> None:
    pos, z = random_molecule(18, random_state=11, dtype=torch.float32)
    S = SolidHarmonicScattering3D()
    out = S(pos[None], z[None])
    assert out.shape == (1, S.output_size) and torch.isfinite(out).all()
    assert np.isfinite(S.meta()["q"]).all()


def test_element_channels_count_atoms_and_add_up_to_the_full_density() -> None:
    pos, z = random_molecule(8, random_state=4)
    S = SolidHarmonicScattering3D(J=1, L=1, qs=(1.0, 2.0), max_order=1, channels=("full", "H", "C", "N", "O"),
                                  grid_step=0.7, margin=4.0, modulus_eps=0.0)
    out, meta = S(pos, z), S.meta()
    for sym, number in (("H", 1), ("C", 6), ("N", 7), ("O", 8)):
        col = (meta["channel"] == sym) & (meta["order"] == 0) & (meta["q"] == 1.0)
        assert float(out[torch.from_numpy(col)]) == float((z == number).sum())
    # A molecule of carbons only: the carbon density is the full density over 6, and the
    # modulus is homogeneous, so the order-1 q = 1 invariants scale by 6.
    carbon = torch.full_like(z, 6.0)
    out = S(pos, carbon)
    one = torch.from_numpy((meta["order"] == 1) & (meta["q"] == 1.0))
    full, c = out[one & torch.from_numpy(meta["channel"] == "full")], out[one & torch.from_numpy(meta["channel"] == "C")]
    torch.testing.assert_close(full, 6 * c, rtol=1e-10, atol=0)


# ------------------------------------------------------------- the operator contract
def test_computation_follows_the_input_and_double_converts_the_constants() -> None:
    pos, z = random_molecule(6, random_state=12)
    S = SolidHarmonicScattering3D(**SMALL)
    assert S.channel_weights.dtype == F64  # exact constants by default
    out64 = S(pos, z)
    out32 = S(pos.float(), z.float())
    assert out64.dtype == F64 and out32.dtype == torch.float32
    # .double() keeps float64 constants: the same result; .float() rounds them, float64 input stays float64.
    torch.testing.assert_close(S.double()(pos, z), out64, rtol=0, atol=0)
    S.float()
    assert S.harmonics_2.dtype == torch.float32 and S(pos, z).dtype == F64
    assert relative_error(S(pos, z), out64) < 1e-6


def test_module_and_input_on_different_devices_are_refused() -> None:
    S = SolidHarmonicScattering3D(J=1, L=1).to("meta")
    with pytest.raises(ValueError, match="positions is on cpu"):
        S(torch.zeros(1, 3), torch.tensor([6.0]))


@pytest.mark.parametrize("max_order", [0, 2])
def test_empty_batch_gives_empty_result(max_order: int) -> None:
    S = SolidHarmonicScattering3D(J=1, L=1, max_order=max_order)
    assert S(torch.zeros(0, 5, 3, dtype=F64), torch.zeros(0, 5)).shape == (0, S.output_size)
    assert S(torch.zeros(2, 0, 0, 3), torch.zeros(2, 0, 0)).shape == (2, 0, S.output_size)


def test_meta_is_numpy_arrays_one_entry_per_coefficient() -> None:
    S = SolidHarmonicScattering3D(J=1, L=1)
    meta = S.meta()
    assert all(isinstance(v, np.ndarray) and v.shape == (S.output_size,) for v in meta.values())
    assert meta["channel"].dtype.kind == "U" and meta["q"].dtype == np.float64 and meta["j1"].dtype == np.int64


# ------------------------------------------------------------------ memory guard
def test_a_molecule_spread_over_1e4_angstrom_is_refused_before_allocating() -> None:
    pos = torch.tensor([[0.0, 0.0, 0.0], [1e4, 1e4, 1e4], [1e4, 0.0, 0.0], [0.0, 1e4, 0.0]])
    with pytest.raises(ResourceLimitError, match=r"1\.73e\+04 angstrom.*memory_limit=.*WAVEPHASE_MEMORY_LIMIT"):
        SolidHarmonicScattering3D(J=1, L=1)(pos, torch.tensor([6.0, 1.0, 1.0, 1.0]))
    # Coordinates so large that the grid size overflows are refused the same way.
    with pytest.raises(ResourceLimitError):
        SolidHarmonicScattering3D(J=1, L=1)(torch.tensor([[0.0, 0.0, 0.0], [3e38, -3e38, 0.0]]),
                                            torch.tensor([6.0, 1.0]))


def test_memory_limit_argument_and_environment_variable(monkeypatch) -> None:
    line = torch.tensor([[0.0, 0.0, 0.0], [1e4, 0.0, 0.0]])
    with pytest.raises(ResourceLimitError, match=r"over the memory limit of 1 GB \(memory_limit=1 GB\)"):
        SolidHarmonicScattering3D(J=1, L=1, memory_limit="1GB")(line, torch.tensor([6.0, 1.0]))
    pos, z = random_molecule(5, random_state=3)
    monkeypatch.setenv("WAVEPHASE_MEMORY_LIMIT", "10kB")
    with pytest.raises(ResourceLimitError, match="WAVEPHASE_MEMORY_LIMIT=10kB"):
        SolidHarmonicScattering3D(J=1, L=1)(pos, z)
    # The argument wins over the environment.
    assert SolidHarmonicScattering3D(J=1, L=1, memory_limit=2**30)(pos, z).shape == (SolidHarmonicScattering3D(
        J=1, L=1).output_size,)
    monkeypatch.setenv("WAVEPHASE_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="WAVEPHASE_MEMORY_LIMIT"):
        SolidHarmonicScattering3D(J=1, L=1)(pos, z)


@pytest.mark.parametrize("limit", ["-1GB", "8 parsecs", 0, True])
def test_bad_memory_limit(limit: object) -> None:
    with pytest.raises((ValueError, TypeError), match="memory_limit"):
        SolidHarmonicScattering3D(memory_limit=limit)


@pytest.mark.timeout(120)
def test_flush_denormals_does_not_leak_into_threads_made_inside() -> None:
    # A fresh process whose first parallel operation runs inside the context: torch's OpenMP
    # workers would inherit the flushing mode for good, and later results would depend on it.
    script = textwrap.dedent("""
        import torch
        from wavephase.scattering._grid3d import flush_denormals
        torch.set_num_threads(2)
        with flush_denormals(torch.device("cpu")):
            (torch.ones(10**6) * 2).sum()
        y = torch.full((10**6,), 1e-39) * 1.0
        print(int((y == 0).sum()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=100,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "0"
