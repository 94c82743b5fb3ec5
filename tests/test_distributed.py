"""extract_features: a verified chunk store, resume from markers, corrupt chunks recomputed, Dask optional."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from torch import nn

from wavephase.data.molecules import Molecules
from wavephase.distributed import chunk_status, extract_features, read_features, resolve_scheduler, transform_fingerprint
from wavephase.exceptions import ChecksumError, DeviceUnavailableError, MissingDependencyError, StaleFileError

# Worker processes cannot import this test module: ship its functions and classes by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _pair_features(positions: np.ndarray, charges: np.ndarray) -> np.ndarray:
    z = charges.astype(np.float64)
    r2 = ((positions[:, :, None, :] - positions[:, None, :, :]) ** 2).sum(-1)
    zz = z[:, :, None] * z[:, None, :] * (1 - np.eye(z.shape[1]))
    return np.stack([z.sum(1), (zz * np.exp(-r2)).sum((1, 2)), (zz / np.sqrt(r2 + 1)).sum((1, 2))], axis=1)


class CountingTransform:
    """Numpy transform that logs each call in ``folder`` and kills its own process on call ``kill_at``."""

    def __init__(self, folder: str, kill_at: int | None = None) -> None:
        self.folder = folder
        self.kill_at = kill_at

    def __call__(self, positions: np.ndarray, charges: np.ndarray) -> np.ndarray:
        if positions.shape[0] > 1:  # the one-molecule probe for the feature count is not logged
            calls = len(os.listdir(self.folder))
            Path(self.folder, f"call-{os.getpid()}-{calls}-{np.random.randint(1 << 30)}").touch()
            if self.kill_at is not None and calls + 1 >= self.kill_at:
                try:
                    fd = os.open(os.path.join(self.folder, "..", "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    pass
                else:
                    os.write(fd, str(os.getpid()).encode())
                    os.close(fd)
                    os.kill(os.getpid(), signal.SIGKILL)
        return _pair_features(positions, charges)


class TorchPairs(nn.Module):
    """Tiny module transform (tensors in, tensors out)."""

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(_pair_features(positions.numpy(), charges.numpy())).to(positions.dtype)


def _data(n: int = 53, atoms: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, atoms, 3)).astype(np.float32)
    ch = rng.choice([0, 1, 6, 8], size=(n, atoms)).astype(np.uint8)
    ch[:, 0] = 6  # no empty molecule
    return pos, ch


def _calls(folder: Path) -> int:
    return len(list(folder.iterdir()))


def test_serial_matches_direct_and_resumes(tmp_path):
    pos, ch = _data()
    log = tmp_path / "calls"
    log.mkdir()
    out = tmp_path / "f"
    tf = CountingTransform(str(log))
    extract_features(tf, Molecules(pos, ch), out, chunk_size=10, scheduler="serial", progress=False)
    expected = _pair_features(pos, ch).astype(np.float32)
    np.testing.assert_array_equal(read_features(out), expected)
    assert _calls(log) == 6 and sorted(chunk_status(out)) == list(range(6))
    # A rerun with everything marked done computes nothing.
    extract_features(tf, Molecules(pos, ch), out, chunk_size=10, scheduler="serial", progress=False)
    assert _calls(log) == 6
    # Lost markers (as after a kill before the marker was written) are recomputed, and only those.
    for c in (1, 4):
        (out / "_done" / f"{c}.json").unlink()
    with pytest.raises(ValueError, match="not computed"):
        read_features(out)
    np.testing.assert_array_equal(read_features(out, rows=np.array([0, 25, 52])), expected[[0, 25, 52]])
    extract_features(tf, Molecules(pos, ch), out, chunk_size=10, scheduler="serial", progress=False)
    assert _calls(log) == 8
    np.testing.assert_array_equal(read_features(out), expected)


def test_rows_selects_chunks_and_module_transform(tmp_path):
    pos, ch = _data()
    out = tmp_path / "m"
    extract_features(TorchPairs(), Molecules(pos, ch), out, chunk_size=10, scheduler="serial", rows=[(0, 5), (31, 33)],
                     progress=False)
    assert sorted(chunk_status(out)) == [0, 3]
    rows = np.r_[0:10, 30:40]
    np.testing.assert_allclose(read_features(out, rows), _pair_features(pos, ch)[rows], rtol=1e-6)


def test_trim_padding_gives_the_same_features(tmp_path):
    pos, ch = _data(n=20, atoms=4)
    pos = np.concatenate([pos, np.zeros((20, 3, 3), np.float32)], axis=1)
    ch = np.concatenate([ch, np.zeros((20, 3), np.uint8)], axis=1)
    out = extract_features(TorchPairs(), Molecules(pos, ch), tmp_path / "t", chunk_size=8, scheduler="serial",
                           trim_padding=True, progress=False)
    np.testing.assert_allclose(read_features(out), _pair_features(pos, ch), rtol=1e-6)


def test_foreign_store_is_refused_unless_overwrite(tmp_path):
    pos, ch = _data()
    out = tmp_path / "f"
    extract_features(TorchPairs(), Molecules(pos, ch), out, chunk_size=10, scheduler="serial", progress=False)
    pos2 = pos.copy()
    pos2[0, 0, 0] += 1.0
    with pytest.raises(ValueError, match="overwrite=True"):
        extract_features(TorchPairs(), Molecules(pos2, ch), out, chunk_size=10, scheduler="serial", progress=False)
    with pytest.raises(ValueError, match="overwrite=True"):
        extract_features(TorchPairs(), Molecules(pos, ch), out, chunk_size=20, scheduler="serial", progress=False)
    extract_features(TorchPairs(), Molecules(pos2, ch), out, chunk_size=10, scheduler="serial", overwrite=True, progress=False)
    np.testing.assert_allclose(read_features(out), _pair_features(pos2, ch), rtol=1e-6)


def test_bad_input(tmp_path):
    pos, ch = _data()
    X = Molecules(pos, ch)
    with pytest.raises(TypeError, match="Molecules container"):
        extract_features(TorchPairs(), pos, tmp_path / "a", scheduler="serial")
    with pytest.raises(ValueError, match="chunk_size"):
        extract_features(TorchPairs(), X, tmp_path / "a", chunk_size=0, scheduler="serial")
    with pytest.raises(ValueError, match="not a torch device"):
        extract_features(TorchPairs(), X, tmp_path / "a", scheduler="serial", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailableError, match="CUDA"):
            extract_features(TorchPairs(), X, tmp_path / "a", scheduler="serial", device="cuda")
    with pytest.raises(ValueError, match="holds no molecule"):
        extract_features(TorchPairs(), X[:0], tmp_path / "a", scheduler="serial")
    with pytest.raises(ValueError, match="scheduler must be 'serial' or a Dask scheduler address"):
        extract_features(TorchPairs(), X, tmp_path / "a", scheduler="local")

    def nan_tf(p: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.full((p.shape[0], 2), np.nan)

    with pytest.raises(ValueError, match="NaN or inf for rows 0:10"):
        extract_features(nan_tf, X, tmp_path / "b", chunk_size=10, scheduler="serial", progress=False)
    assert chunk_status(tmp_path / "b") == {}


def test_paths_that_are_not_stores_are_never_replaced(tmp_path):
    X = Molecules(*_data(n=12))
    (tmp_path / "file").write_text("mine")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    for out in (tmp_path / "file", tmp_path / "folder"):
        with pytest.raises(ValueError, match="is not a feature store"):
            extract_features(TorchPairs(), X, out, scheduler="serial", overwrite=True, progress=False)
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "folder" / "notes.txt").exists()
    with pytest.raises(ValueError, match="not a feature store"):
        read_features(tmp_path / "folder")


@pytest.mark.parametrize("damage", ["garble", "truncate", "zero"])
def test_corrupt_chunk_is_refused_then_recomputed(tmp_path, damage):
    pos, ch = _data(n=30)
    X = Molecules(pos, ch)
    out = extract_features(TorchPairs(), X, tmp_path / "f", chunk_size=10, scheduler="serial", progress=False)
    expected = read_features(out)
    chunk = out / "chunk-000001.ckpt"
    raw = bytearray(chunk.read_bytes())
    if damage == "garble":
        raw[-5] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2:] = bytes(len(raw) - len(raw) // 2)
    chunk.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="chunk-000001"):
        read_features(out)
    np.testing.assert_array_equal(read_features(out, np.arange(10)), expected[:10])  # other chunks still read
    with pytest.warns(UserWarning, match="corrupt; recomputing"):
        extract_features(TorchPairs(), X, out, chunk_size=10, scheduler="serial", progress=False)
    np.testing.assert_array_equal(read_features(out), expected)


def test_chunk_of_another_store_is_not_taken(tmp_path):
    pos, ch = _data(n=20)
    a = extract_features(TorchPairs(), Molecules(pos, ch), tmp_path / "a", chunk_size=10, scheduler="serial",
                         progress=False)
    pos2 = pos + 1.0
    b = extract_features(TorchPairs(), Molecules(pos2, ch), tmp_path / "b", chunk_size=10, scheduler="serial",
                         progress=False)
    (b / "chunk-000000.ckpt").write_bytes((a / "chunk-000000.ckpt").read_bytes())
    with pytest.raises(StaleFileError):
        read_features(b)
    (a / "manifest.ckpt").write_bytes(b"garbage")
    with pytest.raises(StaleFileError, match="overwrite=True"):
        extract_features(TorchPairs(), Molecules(pos, ch), a, chunk_size=10, scheduler="serial", progress=False)


def test_serial_runs_without_dask_or_zarr(tmp_path, monkeypatch):
    for name in ("dask", "distributed", "zarr"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of any of them now fails
    pos, ch = _data(n=25)
    X = Molecules(pos, ch)
    assert resolve_scheduler(None, None) == ("serial", 1)
    threads = torch.get_num_threads()
    out = extract_features(TorchPairs(), X, tmp_path / "f", chunk_size=10, progress=False)
    assert torch.get_num_threads() == threads  # the caller's thread count is restored
    np.testing.assert_allclose(read_features(out), _pair_features(pos, ch), rtol=1e-6)
    for scheduler, workers in ((None, 2), ("tcp://127.0.0.1:8786", None)):
        with pytest.raises(MissingDependencyError, match=r"pip install 'wavephase\[distributed\]'"):
            extract_features(TorchPairs(), X, tmp_path / "g", scheduler=scheduler, n_workers=workers)
    assert not (tmp_path / "g").exists()  # refused before any work


def test_fingerprint_tracks_module_state():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.load_state_dict(a.state_dict())
    assert transform_fingerprint(a) == transform_fingerprint(b)
    with torch.no_grad():
        b.weight[0, 0] += 1
    assert transform_fingerprint(a) != transform_fingerprint(b)


def test_fingerprint_covers_settings_and_the_code_the_transform_uses():
    from wavephase import SolidHarmonicScattering3D
    from wavephase.distributed import _source_files

    base = transform_fingerprint(SolidHarmonicScattering3D())
    assert transform_fingerprint(SolidHarmonicScattering3D(align=False)) != base
    assert transform_fingerprint(SolidHarmonicScattering3D(modulus_eps=0.0)) != base
    assert transform_fingerprint(SolidHarmonicScattering3D(chunk_size=3, memory_limit="1GB")) == base
    files = {Path(f).name for f in _source_files([SolidHarmonicScattering3D])}
    # The grid numerics and the harmonics live in modules of their own: editing them invalidates caches too.
    assert {"solid_harmonic3d.py", "_grid3d.py", "solid_harmonics.py", "molecules.py"} <= files


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_local_cluster_survives_killed_worker(tmp_path):
    pos, ch = _data(n=120)
    log = tmp_path / "calls"
    log.mkdir()
    out = tmp_path / "f"
    extract_features(CountingTransform(str(log), kill_at=3), Molecules(pos, ch), out, chunk_size=10, n_workers=2,
                     progress=False)
    killed = tmp_path / "killed"
    assert killed.exists(), "the worker was not killed: the test did not exercise a failure"
    status = chunk_status(out)
    assert sorted(status) == list(range(12))
    # The chunk the killed process held was computed again by a live process.
    assert _calls(log) >= 13
    assert {m["pid"] for m in status.values()} - {int(killed.read_text())}
    np.testing.assert_array_equal(read_features(out), _pair_features(pos, ch).astype(np.float32))
    json.dumps(status)  # markers are plain JSON


@pytest.mark.timeout(60)
def test_existing_scheduler_address(tmp_path):
    from distributed import LocalCluster

    pos, ch = _data(n=30)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None) as cluster:
        out = extract_features(TorchPairs(), Molecules(pos, ch), tmp_path / "f", chunk_size=7,
                               scheduler=cluster.scheduler_address, progress=False)
        assert len(cluster.scheduler.workers) == 1  # the caller's cluster is left running
    np.testing.assert_allclose(read_features(out), _pair_features(pos, ch), rtol=1e-6)
    assert sorted(chunk_status(out)) == list(range(5))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serial_run_killed_and_started_again_gives_the_same_features(tmp_path):
    import subprocess
    import textwrap

    pos, ch = _data(n=60)
    np.savez(tmp_path / "mols.npz", pos=pos, ch=ch)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        from wavephase.data.molecules import Molecules
        from wavephase.distributed import extract_features

        calls = []

        def pairs(positions, charges):
            if positions.shape[0] > 1:
                calls.append(1)
                if len(calls) == int(sys.argv[1]):
                    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of a chunk
            z = charges.astype(np.float64)
            r2 = ((positions[:, :, None, :] - positions[:, None, :, :]) ** 2).sum(-1)
            return np.stack([z.sum(1), (z[:, :, None] * z[:, None, :] * np.exp(-r2)).sum((1, 2))], axis=1)

        d = np.load({str(tmp_path / "mols.npz")!r})
        extract_features(pairs, Molecules(d["pos"], d["ch"]), sys.argv[2], chunk_size=10, scheduler="serial",
                         progress=False)
    """))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    killed = subprocess.run([sys.executable, str(script), "4", str(tmp_path / "resumed")], env=env)
    assert killed.returncode == -signal.SIGKILL
    assert sorted(chunk_status(tmp_path / "resumed")) == [0, 1, 2]
    for out in ("resumed", "straight"):
        subprocess.run([sys.executable, str(script), "0", str(tmp_path / out)], env=env, check=True)
    np.testing.assert_array_equal(read_features(tmp_path / "resumed"), read_features(tmp_path / "straight"))
