"""Corruption matrix: every kind of file the library writes x every kind of damage.

Each file is written by its real producer at a tiny size, damaged, and read again by the same call:

* damages: truncated, zeroed in place, garbled (bytes flipped in the payload), replaced by a
  foreign file (a verified file of the other payload kind, as another producer writes), or stale
  (intact, but recorded as made from other settings or data);
* caches (features, turbulence fields and mid-run state, QM9, MNIST, feature-store chunks) are
  recomputed, with a warning, and give exactly the result of the intact file;
* checkpoints and records (sparse cascade, classification run, generative model, VAE, synthesis,
  feature-store manifest) are refused by a one-line ChecksumError/StaleFileError naming the file.

0 silent wrong results: no damaged file is ever read as data. metrics.json and report.json are
outputs only (never read back). Realistic staleness (other data of the same size) is tested next
to each producer (tests/models, tests/synthesis, tests/physics, tests/data, tests/test_distributed.py).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import wavephase.data.mnist as mnist_mod
import wavephase.data.qm9 as qm9_mod
import wavephase.physics.turbulence as turbulence_mod
from wavephase.data import Molecules
from wavephase.distributed import extract_features, read_features
from wavephase.exceptions import ChecksumError, StaleFileError
from wavephase.experiments.classification import _checkpoints_record
from wavephase.models import GenerativeScattering, SparseScatteringClassifier
from wavephase.models.baselines import train_vae
from wavephase.models.features import scattering_features
from wavephase.physics import turbulence2d
from wavephase.runs import Checkpoint
from wavephase.synthesis import synthesize

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Every input is drawn once, so that a recomputation sees the same data as the first run.
RNG = np.random.default_rng(0)
IMAGES = RNG.random((12, 8, 8)).astype(np.float32)
LABELS = np.arange(12) % 3
TARGET = torch.from_numpy(RNG.standard_normal((16, 16)))
TURBULENCE = dict(spinup_time=0.2, sample_interval=0.1, n_chains=1, max_dt=0.01, progress=False, cache=True)
QM9_POSITIONS = RNG.standard_normal((40, 29, 3)).astype(np.float32)
MNIST_PARTS = tuple((RNG.random((k, 784), dtype=np.float32), RNG.integers(0, 10, k).astype(np.int64))
                    for k in (6, 3, 4))
MOLECULES = Molecules(RNG.standard_normal((30, 3, 3)).astype(np.float32), np.full((30, 3), 6, np.uint8))


@dataclass
class Kind:
    """How one kind of file is written (``make``) and read back (``use``), and what a damaged one does."""

    what: str  # the file's name in messages
    make: Callable[[Path, pytest.MonkeyPatch], Path]  # writes the file under a folder, returns its path
    use: Callable[[Path, pytest.MonkeyPatch], Any]  # the same call again: a result, or a refusal
    cache: bool  # recomputed (cache) or refused (checkpoint)


def _features(folder, mp):
    mp.setenv("WAVEPHASE_CACHE", str(folder / "cache"))
    return scattering_features(IMAGES, J=1, L=2, cache_name="matrix")


def _sparse(folder, mp):
    feats = scattering_features(IMAGES, J=1, L=2)
    return SparseScatteringClassifier(J=1, L=2, n_proj=2, n_atoms=4, n_steps=1, epochs=1, batch_size=8,
                                      precomputed=True, checkpoint_dir=folder / "sparse").fit(feats, LABELS)


def _record(folder, mp):
    est = SparseScatteringClassifier(J=1, L=2, checkpoint_dir=folder / "run")
    (folder / "run").mkdir(exist_ok=True)
    return _checkpoints_record(est, "mnist", (IMAGES, LABELS), None, None).load()


def _generative(folder, mp):
    return GenerativeScattering(J=1, L=2, n_components=4, channels=(4,), epochs=1, batch_size=8, progress=False,
                                checkpoint=folder / "generative.pt").fit(IMAGES).encode(IMAGES)


def _vae(folder, mp):
    return train_vae(IMAGES, epochs=1, n_blocks=1, latent_dim=2, channels=(4,), batch_size=8, progress=False,
                     checkpoint=folder / "vae.pt").state_dict()


def _synthesis(folder, mp):
    return synthesize(TARGET, n_samples=1, steps=2, J=2, L=2, checkpoint=folder / "synthesis.pt",
                      checkpoint_every=1, progress=False).fields


def _turbulence(folder, mp):
    mp.setenv("WAVEPHASE_CACHE", str(folder / "cache"))
    return turbulence2d(32, 1, random_state=3, **TURBULENCE)


def _turbulence_resumed(folder, mp):
    """The run again, without its finished cache: it starts from the mid-run state."""
    for done in (folder / "cache" / "physics").glob("*.npy"):
        done.unlink()
    return _turbulence(folder, mp)


def _turbulence_partial(folder, mp):
    """The mid-run state of a simulation, saved after every step and kept at the end (as after a kill)."""
    mp.setattr(turbulence_mod, "_CHECKPOINT_SECONDS", 0.0)
    mp.setattr(Checkpoint, "remove", lambda self: None)
    _turbulence(folder, mp)
    (partial,) = (folder / "cache" / "physics").glob("*.partial")
    return partial


def _qm9(folder, mp):
    n = len(QM9_POSITIONS)
    mp.setenv("WAVEPHASE_CACHE", str(folder / "cache"))
    mp.setattr(qm9_mod, "QM9_N_MOLECULES", n)  # a stand-in of 40 molecules, split in halves
    mp.setattr(qm9_mod, "qm9_split", lambda size: {"train": np.arange(size // 2), "test": np.arange(size // 2, size)})
    charges = np.zeros((n, qm9_mod.QM9_MAX_ATOMS), np.uint8)
    charges[:, :2] = (6, 1)
    energy = np.linspace(-40.0, -38.0, n)
    arrays = {"positions": QM9_POSITIONS, "charges": charges,
              "energy_hartree": energy, "energy_kcal_mol": qm9_mod.atomization_energy_kcal_mol(energy, charges),
              "n_atoms": np.full(n, 2, np.int64), "index": np.arange(1, n + 1, dtype=np.int64)}
    mp.setattr(qm9_mod, "fetch_wheel", lambda requirement, sha256: folder / "qm9.whl")
    mp.setattr(qm9_mod, "_build_from_wheel", lambda wheel: {k: v.copy() for k, v in arrays.items()})
    return qm9_mod.load_qm9()


def _mnist(folder, mp):
    import gzip
    import hashlib
    import pickle

    data = gzip.compress(pickle.dumps(MNIST_PARTS, protocol=2), mtime=0)
    wheel = folder / "mnist.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist_mod.MNIST_PICKLE_MEMBER, data)
    mp.setenv("WAVEPHASE_CACHE", str(folder / "cache"))
    mp.setattr(mnist_mod, "MNIST_PICKLE_SHA256", hashlib.sha256(data).hexdigest())
    mp.setattr(mnist_mod, "fetch_wheel", lambda requirement, sha256: wheel)
    return mnist_mod.load_mnist()



def _pairs(positions: np.ndarray, charges: np.ndarray) -> np.ndarray:
    r2 = ((positions[:, :, None] - positions[:, None]) ** 2).sum(-1)
    return np.stack([charges.sum(1), np.exp(-r2).sum((1, 2))], axis=1)


def _store(folder, mp):
    out = extract_features(_pairs, MOLECULES, folder / "store", chunk_size=10, scheduler="serial", progress=False)
    return read_features(out)


def _only(pattern: str) -> Callable[[Path], Path]:
    def find(folder: Path) -> Path:
        (path,) = folder.glob(pattern)
        return path
    return find


def _made(run: Callable, find: Callable[[Path], Path]) -> Callable[[Path, pytest.MonkeyPatch], Path]:
    def make(folder: Path, mp: pytest.MonkeyPatch) -> Path:
        run(folder, mp)
        return find(folder)
    return make


KINDS = {
    "feature cache": Kind("feature cache", _made(_features, _only("cache/features/*.feat")), _features, True),
    "sparse-cascade checkpoint": Kind("sparse-cascade checkpoint", _made(_sparse, _only("sparse/checkpoint.pt")),
                                      _sparse, False),
    "classification record": Kind("classification checkpoints", _made(_record, _only("run/run.ckpt")), _record,
                                  False),
    "generative checkpoint": Kind("generative-scattering checkpoint", _made(_generative, _only("generative.pt")),
                                  _generative, False),
    "VAE checkpoint": Kind("VAE checkpoint", _made(_vae, _only("vae.pt")), _vae, False),
    "synthesis checkpoint": Kind("synthesis checkpoint", _made(_synthesis, _only("synthesis.pt")), _synthesis, False),
    "turbulence cache": Kind("turbulence cache", _made(_turbulence, _only("cache/physics/*.npy")), _turbulence,
                             True),
    "turbulence checkpoint": Kind("turbulence checkpoint", _turbulence_partial, _turbulence_resumed, True),
    "QM9 cache": Kind("QM9 cache", _made(_qm9, _only("cache/qm9/*.ckpt")), _qm9, True),
    "MNIST cache": Kind("MNIST cache", _made(_mnist, _only("cache/mnist/*.ckpt")), _mnist, True),
    "feature-store chunk": Kind("feature chunk 1", _made(_store, _only("store/chunk-000001.ckpt")), _store, True),
    "feature-store manifest": Kind("feature store manifest", _made(_store, _only("store/manifest.ckpt")), _store,
                                   False),
}


def _header_end(raw: bytes) -> int:
    return raw.index(b"\n", raw.index(b"\n") + 1) + 1


def _damaged(raw: bytes, damage: str, kind_of_payload: str, folder: Path) -> bytes:
    payload = _header_end(raw)
    if damage == "truncate":
        return raw[: payload + (len(raw) - payload) // 2]
    if damage == "zero":
        return bytes(len(raw))
    if damage == "garble":
        flipped = bytearray(raw)
        for i in range(payload, len(raw), max(1, (len(raw) - payload) // 7)):
            flipped[i] ^= 0x5A
        return bytes(flipped)
    if damage == "foreign":  # a verified file of the other payload kind, as another producer writes it
        donor = Checkpoint(folder / "donor", {"another": "producer"}, what="donor")
        if kind_of_payload == "torch":
            donor.save_array(np.arange(12.0))
        else:
            donor.save({"epoch": 3})
        return (folder / "donor").read_bytes()
    # stale: the same content, recorded as made from other settings or data
    header = json.loads(raw[raw.index(b"\n") + 1: payload])
    header["fingerprint"] = "0" * 64
    return raw[: raw.index(b"\n") + 1] + (json.dumps(header) + "\n").encode() + raw[payload:]


def _same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each kind's file, written once by its producer: the folder, the path, the intact bytes and result."""
    out: dict[str, tuple[Path, Path, bytes, Any]] = {}

    def get(name: str, mp: pytest.MonkeyPatch) -> tuple[Path, Path, bytes, Any]:
        if name not in out:
            folder = tmp_path_factory.mktemp(name.replace(" ", "-"))
            path = KINDS[name].make(folder, mp)
            raw = path.read_bytes()
            result = KINDS[name].use(folder, mp)  # from the intact file (a finished run removes its mid-run state)
            assert not path.exists() or path.read_bytes() == raw, "reading the intact file rewrote it"
            out[name] = (folder, path, raw, result)
        return out[name]
    return get


@pytest.mark.parametrize("damage", ["truncate", "zero", "garble", "foreign", "stale"])
@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_damaged_file_is_recomputed_or_refused_never_read(made, monkeypatch, name, damage):
    kind = KINDS[name]
    folder, path, raw, intact = made(name, monkeypatch)
    payload_kind = json.loads(raw[raw.index(b"\n") + 1: _header_end(raw)])["kind"]
    path.write_bytes(_damaged(raw, damage, payload_kind, folder))
    try:
        if kind.cache:
            with pytest.warns(UserWarning, match=f"{kind.what} .* is (corrupt|stale); recomputing"):
                result = kind.use(folder, monkeypatch)
            _same(result, intact)  # recomputed: the result of the intact file, bit for bit
        else:
            with pytest.raises((ChecksumError, StaleFileError)) as err:
                kind.use(folder, monkeypatch)
            message = str(err.value)
            assert "\n" not in message and str(path) in message, message
    finally:
        path.write_bytes(raw)
