"""Resource guards (wavephase.resources): work whose memory grows with its input's geometry estimates it first.

Past the limit, a ResourceLimitError names what needs the memory and the setting that raises the
limit (``memory_limit=`` where the function takes it, ``WAVEPHASE_MEMORY_LIMIT`` always), before
anything large is allocated: absurd geometries are refused under the default limit (a fraction of
the memory available), and small work is refused under a small limit set in the environment.
The 3D transforms' guards are tested with them (tests/scattering/).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavephase import Scattering2D
from wavephase.data.augment import augment_images, place_on_canvas
from wavephase.data.molecules import Molecules
from wavephase.distributed import extract_features, read_features
from wavephase.exceptions import ResourceLimitError
from wavephase.harmonics import PhaseHarmonicStatistics, ScatteringCovariance
from wavephase.physics import ising, turbulence2d
from wavephase.resources import MEMORY_LIMIT_ENV, check_memory, parse_memory_limit
from wavephase.synthesis import synthesize

ENV_AND_ARGUMENT = r"memory_limit= or the environment variable WAVEPHASE_MEMORY_LIMIT"


@pytest.fixture
def small_limit(monkeypatch):
    """A 10 kB limit through the environment, as a user would set it."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "10kB")
    return "WAVEPHASE_MEMORY_LIMIT=10kB"


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "needs about" in text and "over the memory limit" in text
    return text


@pytest.mark.parametrize("value, expected", [(1000, 1000), ("8GB", 8 * 10**9), ("512 MiB", 512 * 2**20),
                                             ("1.5kb", 1500), (2.5e3, 2500), (None, None)])
def test_parse_memory_limit(value, expected):
    assert parse_memory_limit(value) == expected


@pytest.mark.parametrize("value", ["-1GB", "8 parsecs", 0, float("inf"), float("nan"), True, [1]])
def test_parse_memory_limit_refuses_nonsense_naming_the_setting(value):
    with pytest.raises((TypeError, ValueError), match="memory_limit"):
        parse_memory_limit(value)


def test_check_memory_precedence_and_message(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    check_memory(10**6, "a small thing")  # far below a quarter of any machine's memory
    with pytest.raises(ResourceLimitError, match=r"a quarter of the .* available on cpu"):
        check_memory(float("inf"), "an absurd thing")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1MB")
    with pytest.raises(ResourceLimitError, match=r"over the memory limit of 1 MB \(WAVEPHASE_MEMORY_LIMIT=1MB\)"):
        check_memory(2e6, "x")
    check_memory(2e6, "x", override=3 * 10**6)  # the argument wins over the environment
    with pytest.raises(ResourceLimitError) as err:
        check_memory(2e6, "x", fix="lower it", argument=False)
    assert "lower it" in str(err.value) and "memory_limit=" not in str(err.value)


# ------------------------------------------------------------------ geometries no machine holds
def test_absurd_geometries_are_refused_under_the_default_limit(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    with pytest.raises(ResourceLimitError, match="Morlet filters of 65536x65536 fields") as err:
        PhaseHarmonicStatistics((2**16, 2**16), J=2, L=8)
    assert ENV_AND_ARGUMENT in _one_line(err)
    with pytest.raises(ResourceLimitError, match="Ising chain"):
        ising(2**20, 4, progress=False)
    with pytest.raises(ResourceLimitError, match="turbulence simulation"):
        turbulence2d(2**20, 4, progress=False)
    with pytest.raises(ResourceLimitError, match=r"the synthesis of 1000000000 field\(s\) of 16x16"):
        synthesize(torch.randn(16, 16), n_samples=10**9, steps=1, progress=False)
    with pytest.raises(ResourceLimitError, match=r"Scattering2D\(J=2, L=8\) on the padded 65544x65544 grid") as err:
        Scattering2D(2, (2**16, 2**16))
    assert "use a smaller shape, J or L" in _one_line(err)
    with pytest.raises(ResourceLimitError, match="canvas") as err:
        place_on_canvas(np.zeros((10, 28, 28), np.float32), 10**6, 0)
    assert "WAVEPHASE_MEMORY_LIMIT" in _one_line(err) and "memory_limit=" not in str(err.value)


# ------------------------------------------------------------------ each guard under a small limit
def test_statistics_guard_the_moments_of_a_batch(small_limit):
    for make in (PhaseHarmonicStatistics, ScatteringCovariance):
        with pytest.raises(ResourceLimitError, match=small_limit):
            make((32, 32), J=2, L=2)
        op = make((32, 32), J=2, L=2, memory_limit="5MB")  # the argument wins over the environment
        op.set_reference(torch.randn(2, 32, 32))
        with pytest.raises(ResourceLimitError, match=r"the moments of 64 field\(s\) of 32x32") as err:
            op(torch.randn(64, 32, 32))
        assert ENV_AND_ARGUMENT in _one_line(err) and "fewer fields" in str(err.value)
        assert op(torch.randn(2, 32, 32))["mean"].shape == (2, 2)
        assert op.memory_estimate(64, torch.float64) == 2 * op.memory_estimate(64, torch.float32)


def test_phase_harmonic_references_are_checked_without_a_gradients_memory():
    # The reference moments keep no graph: a documented recipe (16 fields of 256 x 256) was refused
    # on a machine with 18.7 GB free for 4.8 GB it would never use (1.0 GB measured).
    op = PhaseHarmonicStatistics((32, 32), J=2, L=2, memory_limit="3MB")
    assert op.memory_estimate(16, gradient=False) < 3e6 < op.memory_estimate(16)
    fields = torch.randn(16, 32, 32, generator=torch.Generator().manual_seed(0))
    op.set_reference(fields)
    with torch.no_grad():
        assert op(fields)["mean"].shape == (16, 2)
    with pytest.raises(ResourceLimitError, match=r"the moments of 16 field\(s\)"):
        op(fields.clone().requires_grad_())


def test_synthesis_guards_samples_history_and_moments(small_limit):
    target = torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ResourceLimitError, match=small_limit) as err:
        synthesize(target, n_samples=4, steps=1, progress=False)
    assert "lower n_samples" in _one_line(err)
    with pytest.raises(ResourceLimitError, match=r"memory_limit=1 MB.*history_size"):
        synthesize(target, n_samples=64, steps=1, progress=False, memory_limit="1MB")
    result = synthesize(target, n_samples=1, steps=1, J=2, L=2, progress=False, memory_limit="50MB")
    assert torch.isfinite(result.fields).all()


def test_physics_generators_guard_their_lattices(small_limit):
    with pytest.raises(ResourceLimitError, match=rf"Ising chain\(s\) of 64x64.*{small_limit}") as err:
        ising(64, 2, progress=False)
    assert ENV_AND_ARGUMENT in _one_line(err)
    assert ising(8, 2, n_equilibrate=1, progress=False, memory_limit="1MB").shape == (2, 8, 8)
    with pytest.raises(ResourceLimitError, match=rf"turbulence simulation\(s\) of 64x64.*{small_limit}") as err:
        turbulence2d(64, 2, progress=False)
    assert "lower size, n_samples or n_chains" in _one_line(err)


def test_augmented_copies_are_guarded(small_limit):
    X = np.zeros((20, 28, 28), np.float32)
    with pytest.raises(ResourceLimitError, match=rf"augmented copy of 20 image\(s\) of 28x28.*{small_limit}") as err:
        augment_images(X, random_state=0, max_shift=1)
    assert "memory_limit=" not in _one_line(err)
    with pytest.raises(ResourceLimitError, match=r"20 image\(s\) on a 32x32 canvas"):
        place_on_canvas(X, 32, 2)


def test_feature_store_is_guarded_when_read_back(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = Molecules(rng.normal(size=(40, 3, 3)).astype(np.float32), np.full((40, 3), 6, np.uint8))
    out = extract_features(lambda p, c: np.repeat(p.reshape(len(p), -1), 40, axis=1), X, tmp_path / "store",
                           chunk_size=10, scheduler="serial", progress=False)
    assert read_features(out).shape == (40, 360)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "10kB")
    with pytest.raises(ResourceLimitError, match=r"40 row\(s\) of 360 features of the feature store .*store") as err:
        read_features(out)
    assert "rows=" in _one_line(err)
    assert read_features(out, rows=np.arange(2), memory_limit="1MB").shape == (2, 360)


def test_the_command_line_reports_a_guard_in_one_line(small_limit, tmp_path, capsys):
    from wavephase.cli.main import main

    code = main(["synth", "--field", "ising", "--size", "16", "--samples", "1", "--steps", "2", "--no-progress",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "Ising chain" in err and small_limit in err
