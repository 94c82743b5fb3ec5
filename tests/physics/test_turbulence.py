"""turbulence2d: sampling, reproducibility, the verified cache and the resumable simulation."""

import pytest
import torch

from wavephase.physics import turbulence2d
from wavephase.physics.turbulence import default_hyperviscosity


def _flatness(w):
    w = w.double() - w.double().mean(dim=(-2, -1), keepdim=True)
    return (w**4).mean(dim=(-2, -1)) / (w**2).mean(dim=(-2, -1)) ** 2


def test_generated_fields_are_dealiased_reproducible_and_finite():
    kw = dict(spinup_time=1.0, sample_interval=0.5, progress=False)
    w = turbulence2d(32, 3, random_state=1, n_chains=2, **kw)
    assert w.shape == (3, 32, 32) and w.dtype == torch.float32
    assert torch.isfinite(w).all()
    spec = torch.fft.rfft2(w.double()).abs()
    k = torch.fft.fftfreq(32, 1 / 32).abs()[:, None]
    kx = torch.fft.rfftfreq(32, 1 / 32)[None, :]
    outside = (k >= 32 / 3) | (kx >= 32 / 3)
    assert float(spec[:, outside].max()) < 1e-4 * float(spec.max())
    torch.testing.assert_close(w, turbulence2d(32, 3, random_state=1, n_chains=2, **kw))
    assert not torch.equal(w, turbulence2d(32, 3, random_state=2, n_chains=2, **kw))
    # samples of one chain are taken sample_interval apart, not copies
    assert not torch.equal(w[0], w[2])


def test_fields_are_the_same_whatever_the_threads_and_a_callable_count_is_followed():
    # A simulation may take more cores as other jobs end (wavephase.cores.CoreShare): it must not
    # change a value, and torch's setting of the calling thread is restored.
    kw = dict(spinup_time=2.0, sample_interval=0.5, n_chains=3, progress=False)
    one = turbulence2d(64, 3, random_state=4, num_threads=1, **kw)
    asked = []

    def one_then_two() -> int:
        asked.append(torch.get_num_threads())
        return 1 if len(asked) < 20 else 2

    before = torch.get_num_threads()
    assert torch.equal(turbulence2d(64, 3, random_state=4, num_threads=one_then_two, **kw), one)
    assert torch.equal(turbulence2d(64, 3, random_state=4, num_threads=2, **kw), one)
    assert len(asked) > 21 and asked[19] == 1 and asked[21] == 2  # asked at every step, and followed
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match=r"num_threads\(\)"):
        turbulence2d(64, 1, random_state=4, num_threads=lambda: 0, **kw)


@pytest.mark.slow
def test_vorticity_is_strongly_non_gaussian():
    # Coherent vortices: at 64^2 the default regime gives flatness ~5-8 after 30 time units
    # (measured); a Gaussian field has 3.
    w = turbulence2d(64, 4, random_state=0, spinup_time=30.0, initial_wavenumber=6.0, dtype=torch.float32,
                     progress=False)
    assert float(_flatness(w).mean()) > 4.0


def test_cache_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path))
    kw = dict(spinup_time=0.3, progress=False, cache=True)
    a = turbulence2d(32, 2, random_state=5, **kw)
    files = list((tmp_path / "physics").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy"
    # a cached call returns the stored fields
    assert torch.equal(turbulence2d(32, 2, random_state=5, **kw), a)
    # zeroed in place: the checksum no longer matches, the fields are recomputed, never reused
    data = bytearray(files[0].read_bytes())
    data[-64:] = bytes(64)
    files[0].write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt; recomputing"):
        b = turbulence2d(32, 2, random_state=5, **kw)
    torch.testing.assert_close(b, a)
    # truncated, then garbled
    files[0].write_bytes(files[0].read_bytes()[:200])
    with pytest.warns(UserWarning, match="corrupt"):
        torch.testing.assert_close(turbulence2d(32, 2, random_state=5, **kw), a)
    data = bytearray(files[0].read_bytes())
    data[:8] = b"garbled!"
    files[0].write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        torch.testing.assert_close(turbulence2d(32, 2, random_state=5, **kw), a)
    assert torch.equal(turbulence2d(32, 2, random_state=5, **kw), a)
    # other arguments: another file
    turbulence2d(32, 2, random_state=6, **kw)
    assert len(list((tmp_path / "physics").iterdir())) == 2


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(size=33), ValueError, "even"),
        (dict(size=16), ValueError, "size"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(drag=-1.0), ValueError, "drag"),
        (dict(cfl=5.0), ValueError, "cfl"),
        (dict(forcing_wavenumber=20.0), ValueError, "forcing_wavenumber"),
        (dict(injection_rate=float("nan")), ValueError, "injection_rate"),
        (dict(dtype=torch.int32), TypeError, "dtype"),
        (dict(random_state="x"), TypeError, "random_state"),
        (dict(device="cuda:99"), RuntimeError, "cuda"),
        (dict(num_threads=0), ValueError, "num_threads"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, err, match):
    args = dict(size=32, n_samples=1, progress=False, spinup_time=0.1)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        turbulence2d(**args)


def test_cached_run_resumes_after_a_kill(tmp_path, monkeypatch):
    import wavephase.physics.turbulence as turb

    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "a"))
    kw = dict(spinup_time=0.5, sample_interval=0.2, n_chains=1, max_dt=0.01, progress=False, cache=True)
    original = turb.TurbulenceSolver.step
    counted = {"n": 0}

    def counting_step(self):
        counted["n"] += 1
        return original(self)

    monkeypatch.setattr(turb.TurbulenceSolver, "step", counting_step)
    reference = turbulence2d(32, 2, random_state=7, **kw)
    total_steps, counted["n"] = counted["n"], 0
    assert total_steps > 65

    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "b"))
    monkeypatch.setattr(turb, "_CHECKPOINT_SECONDS", 0.0)
    calls = {"n": 0}

    def dying_step(self):
        calls["n"] += 1
        if calls["n"] == 60:  # t ~ 0.6: past the first sample
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(turb.TurbulenceSolver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        turbulence2d(32, 2, random_state=7, **kw)
    partial = list((tmp_path / "b" / "physics").glob("*.partial"))
    assert len(partial) == 1
    monkeypatch.setattr(turb.TurbulenceSolver, "step", counting_step)
    resumed = turbulence2d(32, 2, random_state=7, **kw)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=0)
    # it went on from the checkpoint: the 59 steps done before the kill are not redone
    assert counted["n"] == total_steps - 59
    assert not list((tmp_path / "b" / "physics").glob("*.partial"))


def test_a_corrupt_partial_simulation_is_restarted_not_reused(tmp_path, monkeypatch):
    import wavephase.physics.turbulence as turb

    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path))
    kw = dict(spinup_time=0.3, sample_interval=0.1, n_chains=1, max_dt=0.01, progress=False, cache=True)
    reference = turbulence2d(32, 2, random_state=3, **{**kw, "cache": False})
    monkeypatch.setattr(turb, "_CHECKPOINT_SECONDS", 0.0)
    original, calls = turb.TurbulenceSolver.step, {"n": 0}

    def dying_step(self):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(turb.TurbulenceSolver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        turbulence2d(32, 2, random_state=3, **kw)
    monkeypatch.setattr(turb.TurbulenceSolver, "step", original)
    (partial,) = (tmp_path / "physics").glob("*.partial")
    partial.write_bytes(partial.read_bytes()[:-10])
    with pytest.warns(UserWarning, match="turbulence checkpoint .* is corrupt; recomputing"):
        torch.testing.assert_close(turbulence2d(32, 2, random_state=3, **kw), reference, rtol=0, atol=0)
    assert not list((tmp_path / "physics").glob("*.partial"))


def test_default_hyperviscosity_damps_the_cutoff_at_the_given_rate():
    nu = default_hyperviscosity(96, order=4, cutoff_damping=20.0)
    assert nu * (96 / 3) ** 8 == pytest.approx(20.0)
