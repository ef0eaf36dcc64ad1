"""predict.in, fingerprint setups, aenet XSF, and the predict/info CLI."""

from __future__ import annotations

import re

import numpy as np
import pytest

from aenet_torch_ase import InputFileError
from aenet_torch_ase.cli import main
from aenet_torch_ase.io.input_files import read_fingerprint_setup, read_predict_in
from aenet_torch_ase.io.nn_binary import write_nn
from aenet_torch_ase.io.xsf import read_xsf, write_xsf
from conftest import require_reference, tiny_nn_files


def test_predict_in_keywords(tmp_path):
    p = tmp_path / "predict.in"
    p.write_text(
        "! comment\n# another\n% third\n\ntypes\n2\nLi\nSi\n\n"
        "NETWORKS\n  Li  \"pots/Li.nn\"\n  Si  'pots dir/Si.nn'\n\n"
        "forces\nPrint_Atomic_Energies\nverbosity high\n"
        "RELAX\nmethod=bfgs F_conv=0.05 steps = 20\n"
        "FILES\n2\nstructures/a.xsf\nb.xsf\n"
    )
    inp = read_predict_in(p)
    assert inp.types == ["Li", "Si"]
    assert inp.networks["Li"] == tmp_path / "pots/Li.nn"
    assert inp.networks["Si"] == tmp_path / "pots dir/Si.nn"
    assert inp.forces and inp.print_atomic_energies and inp.verbosity == "high"
    assert inp.relax == {"method": "bfgs", "f_conv": 0.05, "steps": 20}
    assert inp.files == [tmp_path / "structures/a.xsf", tmp_path / "b.xsf"]


@pytest.mark.parametrize("text,message", [
    ("TYPES\n1\nLi\nNETWORKS\nLi Li.nn\nBOGUS\n", r"line 6: unknown keyword 'BOGUS'"),
    ("TYPES\nx\n", r"line 2: number of TYPES: 'x' is not a whole number"),
    ("TYPES\n2\nLi\nSi\nNETWORKS\nLi Li.nn\n", r"file ends where the data of NETWORKS should follow"),
    ("NETWORKS\nLi Li.nn\n", r"line 1: NETWORKS must come after TYPES"),
    ("TYPES\n1\nLi\n", r"no NETWORKS entry for \['Li'\]"),
])
def test_predict_in_errors(tmp_path, text, message):
    p = tmp_path / "predict.in"
    p.write_text(text)
    with pytest.raises(InputFileError, match=message):
        read_predict_in(p)


def test_fingerprint_setup(tmp_path):
    p = tmp_path / "Ti.fingerprint.stp"
    p.write_text(
        "DESCR\n  N. Artrith and A. Urban, Comput. Mater. Sci. 114 (2016) 135-150.\nEND DESCR\n\n"
        "atom  Ti\nENV  2\nTi\nO\nRMIN  0.55d0\n\nBASIS type=Chebyshev\n"
        "radial_Rc = 8.0  radial_N = 16  angular_Rc = 6.5  angular_N = 4\n"
    )
    s = read_fingerprint_setup(p)
    assert (s.atom, s.env, s.rmin) == ("Ti", ["Ti", "O"], 0.55)
    assert (s.radial_rc, s.radial_n, s.angular_rc, s.angular_n) == (8.0, 16, 6.5, 4)
    assert s.n_features == 44 and "Artrith" in s.description


def test_fingerprint_setup_errors(tmp_path):
    p = tmp_path / "X.stp"
    p.write_text("ATOM Ti\nENV 1\nTi\nFUNCTIONS type=Behler2011\n2\nG=2 type2=Ti eta=0.1 Rs=0 Rc=6\n")
    with pytest.raises(InputFileError, match="line 4: Behler2011 .*not supported yet"):
        read_fingerprint_setup(p)
    p.write_text("ATOM Ti\nENV 1\nTi\nBASIS type=Chebyshev\nradial_rc = 8.0 radial_N = 16 angular_Rc = 6.5 angular_N = 4\n")
    with pytest.raises(InputFileError, match=r"line 5: unknown Chebyshev parameters \['radial_rc'\]"):
        read_fingerprint_setup(p)


def test_xsf_round_trip_and_units(tmp_path):
    from ase import Atoms

    a = Atoms("LiSi", positions=[[0, 0, 0], [1.5, 1.2, 0.3]], cell=np.eye(3) * 4.0, pbc=True)
    f = np.array([[0.5, -1.0, 2.0], [-0.5, 1.0, -2.0]])
    write_xsf(tmp_path / "s.xsf", a, energy=-12.5, forces=f)
    b = read_xsf(tmp_path / "s.xsf")
    assert b.get_chemical_symbols() == ["Li", "Si"] and b.pbc.all()
    np.testing.assert_allclose(b.positions, a.positions)
    assert b.get_potential_energy() == -12.5
    np.testing.assert_allclose(b.get_forces(), f)  # eV/A, not scaled by Hartree
    write_xsf(tmp_path / "c.xsf", a[:1].copy())
    c = read_xsf(tmp_path / "c.xsf")
    assert c.pbc.all()  # cell kept from the Atoms


def test_xsf_errors(tmp_path):
    p = tmp_path / "bad.xsf"
    p.write_text("CRYSTAL\nPRIMVEC\n1 0 0\n0 1 0\n0 0 1\nPRIMCOORD\n1 1\n22 0 0 0\n")
    with pytest.raises(InputFileError, match="line 8: '22' is not a chemical symbol.*atomic number"):
        read_xsf(p)
    p.write_text("# nothing here\n")
    with pytest.raises(InputFileError, match="no PRIMCOORD or ATOMS block"):
        read_xsf(p)


def test_reference_tio2_xsf_energy_and_forces():
    ref = require_reference()
    import ase.io

    frames = {a.info["name"]: a for a in ase.io.read(ref / "TiO2/aenet-python-5t-5t/reference_predictx-2.0.4.extxyz", ":")}
    for path in sorted((ref / "TiO2/xsf").glob("*.xsf"))[:5]:
        a = read_xsf(path)
        r = frames[path.stem]
        assert a.get_potential_energy() == pytest.approx(r.info["dft_energy"], abs=1e-6)
        np.testing.assert_allclose(a.get_forces(), r.arrays["dft_forces"], atol=1e-6)


def test_predict_cli_matches_reference(tmp_path, capsys):
    ref = require_reference() / "LiSi-Artrith2018"
    import ase.io

    frames = {a.info["name"]: a for a in ase.io.read(ref / "reference_predictx-2.0.4.extxyz", ":")}
    names = ["LiSi-diamond-8at-small", "aLiSi-cluster-r6.5", "LiSi-dimer-2.6"]
    (tmp_path / "predict.in").write_text(
        f"TYPES\n2\nLi\nSi\nNETWORKS\nLi \"{ref}/Li.15t-15t.nn\"\nSi \"{ref}/Si.15t-15t.nn\"\nFORCES\n"
        f"FILES\n{len(names)}\n" + "".join(f"{ref}/xsf/{n}.xsf\n" for n in names)
    )
    assert main(["predict", str(tmp_path / "predict.in")]) == 0
    out = capsys.readouterr().out
    totals = [float(x) for x in re.findall(r"Total energy\s+:\s+(\S+) eV", out)]
    cohesive = [float(x) for x in re.findall(r"Cohesive energy\s+:\s+(\S+) eV", out)]
    for n, e, c in zip(names, totals, cohesive, strict=True):
        assert e == pytest.approx(frames[n].info["predictx_energy"], abs=1.1e-8)
        assert c == pytest.approx(frames[n].info["predictx_cohesive_energy"], abs=1.1e-8)
    assert out.count("All forces are given in eV/Angstrom.") == 3


def test_predict_cli_self_contained(tmp_path, capsys, triclinic_cell):
    files = tiny_nn_files()
    for s, nn in files.items():
        write_nn(nn, tmp_path / f"{s}.nn")
    write_xsf(tmp_path / "s.xsf", triclinic_cell)
    (tmp_path / "predict.in").write_text("TYPES\n2\nLi\nSi\nNETWORKS\nLi Li.nn\nSi Si.nn\nPRINT_ATOMIC_ENERGIES\n")
    assert main(["predict", str(tmp_path / "predict.in"), str(tmp_path / "s.xsf")]) == 0
    out = capsys.readouterr().out
    from aenet_torch_ase import AenetTorch

    triclinic_cell.calc = AenetTorch(files)
    total = float(re.search(r"Total energy\s+:\s+(\S+) eV", out).group(1))
    assert total == pytest.approx(triclinic_cell.get_potential_energy(), abs=1e-8)
    assert main(["info", str(tmp_path / "Li.nn")]) == 0
    info = capsys.readouterr().out
    assert "network         : 22-7-5-1 (tanh, twist, linear)" in info
    assert main(["predict", str(tmp_path / "missing.in")]) == 2
    assert "missing.in" in capsys.readouterr().err


def test_predict_relax(tmp_path, capsys, triclinic_cell):
    """RELAX in predict.in relaxes the structure before the report (forces below F_conv)."""
    files = tiny_nn_files()
    for s, nn in files.items():
        write_nn(nn, tmp_path / f"{s}.nn")
    write_xsf(tmp_path / "s.xsf", triclinic_cell)
    (tmp_path / "predict.in").write_text(
        "TYPES\n2\nLi\nSi\nNETWORKS\nLi Li.nn\nSi Si.nn\nFORCES\nRELAX\nmethod=fire F_conv=0.02 steps=2000\n")
    assert main(["predict", str(tmp_path / "predict.in"), str(tmp_path / "s.xsf")]) == 0
    out = capsys.readouterr().out
    rms = float(re.search(r"RMS force\s+:\s+(\S+)", out).group(1))
    fmax = np.abs([float(x) for x in re.search(r"Maximum force\s+:\s+(.+)", out).group(1).split()])
    assert np.linalg.norm(fmax) < 0.02 and rms < 0.02
    assert "did not converge" not in out
