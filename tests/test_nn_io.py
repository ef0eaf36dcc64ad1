"""aenet `.nn` (binary) and `.nn.ascii` reading and writing."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest

from aenet_torch_ase import AenetTorch, PotentialFileError, SpeciesError
from aenet_torch_ase.cli import main
from aenet_torch_ase.io.nn_ascii import nn_to_ascii, parse_nn_ascii, read_nn_ascii, to_binary_compatible
from aenet_torch_ase.io.nn_binary import nn_to_bytes, parse_nn_bytes, read_nn, write_nn
from aenet_torch_ase.io.nn_file import typespin_weights
from conftest import require_reference, tiny_nn_files


def all_reference_nn():
    ref = require_reference()
    files = sorted(ref.rglob("*.nn"))
    assert len(files) >= 8
    return files


def test_reference_files_round_trip_byte_identical(tmp_path):
    for path in all_reference_nn():
        nn = read_nn(path)
        out = tmp_path / path.name
        write_nn(nn, out)
        assert out.read_bytes() == path.read_bytes(), path


def test_reference_ascii_converts_to_shipped_binary(tmp_path):
    """aenet-PyTorch's own .nn.ascii -> .nn pair: identical bytes, like nnASCII2bin."""
    base = require_reference() / "TiO2/aenet-python-5t-5t"
    for sym in ("Ti", "O"):
        assert main(["convert", str(base / f"{sym}.nn.ascii"), str(tmp_path / f"{sym}.nn")]) == 0
        assert (tmp_path / f"{sym}.nn").read_bytes() == (base / f"{sym}.nn").read_bytes()
        # and the ASCII text itself is reproduced exactly
        assert nn_to_ascii(read_nn_ascii(base / f"{sym}.nn.ascii")) == (base / f"{sym}.nn.ascii").read_text()


def test_binary_to_ascii_to_binary_within_ascii_precision(tmp_path):
    for path in all_reference_nn():
        nn = read_nn(path)
        back = parse_nn_ascii(nn_to_ascii(nn).splitlines(), "mem")
        # %24.17f keeps 17 decimals: absolute error below 1e-17 * a few
        np.testing.assert_allclose(back.weights, nn.weights, rtol=0, atol=1e-16)
        np.testing.assert_allclose(back.sfval_cov, nn.sfval_cov, rtol=1e-15, atol=1e-16)
        assert back.scale == nn.scale and back.shift == nn.shift
        assert list(back.e_atom) == list(nn.e_atom)


def test_self_contained_round_trips(tmp_path):
    for sym, nn in tiny_nn_files().items():
        data = nn_to_bytes(nn)
        again = parse_nn_bytes(data, "mem")
        assert nn_to_bytes(again) == data
        np.testing.assert_array_equal(again.weights, nn.weights)
        assert again.envtypes == ["Li", "Si"] and again.atomtype == sym
        text = nn_to_ascii(nn)
        assert nn_to_ascii(parse_nn_ascii(text.splitlines(), "mem")) == text
        # the layer matrices come back in aenet's Fortran layout
        for (w0, b0), (w1, b1) in zip(nn.layer_matrices(), again.layer_matrices()):
            np.testing.assert_array_equal(w0, w1)
            np.testing.assert_array_equal(b0, b1)


def test_fortran_weight_layout():
    """Flat index of weight (out o, in i) is iw[l] + i*n_out + o (spec 1.6)."""
    nn = tiny_nn_files()["Li"]
    w, b = nn.layer_matrices()[1]
    n_in, n_out = nn.nnodes[1], nn.nnodes[2]
    for o in range(n_out):
        for i in range(n_in):
            assert w[o, i] == nn.weights[nn.iw[1] + i * n_out + o]
        assert b[o] == nn.weights[nn.iw[1] + n_in * n_out + o]


def test_typespin_weights():
    assert typespin_weights(2) == [-1, 1]
    assert typespin_weights(3) == [-1, 0, 1]
    assert typespin_weights(4) == [-2, -1, 1, 2]
    assert typespin_weights(5) == [-2, -1, 0, 1, 2]
    assert typespin_weights(6) == [-3, -2, -1, 1, 2, 3]


@pytest.fixture
def li_bytes():
    return nn_to_bytes(tiny_nn_files()["Li"])


def test_truncated_file(tmp_path, li_bytes):
    p = tmp_path / "Li.nn"
    p.write_bytes(li_bytes[: len(li_bytes) // 2])
    with pytest.raises(PotentialFileError, match=r"Li\.nn.*truncated"):
        read_nn(p)


def test_record_marker_mismatch(tmp_path, li_bytes):
    data = bytearray(li_bytes)
    data[4 + 4] ^= 0xFF  # end marker of record 1
    p = tmp_path / "Li.nn"
    p.write_bytes(bytes(data))
    with pytest.raises(PotentialFileError, match="end marker"):
        read_nn(p)


def test_wrong_record_length(tmp_path, li_bytes):
    # make record 1 (nlayers) 8 bytes long: a consistent but wrong record
    data = struct.pack("<i", 8) + li_bytes[4:8] + b"\0\0\0\0" + struct.pack("<i", 8) + li_bytes[12:]
    p = tmp_path / "Li.nn"
    p.write_bytes(data)
    with pytest.raises(PotentialFileError, match="'nlayers' has 8 bytes, expected 4"):
        read_nn(p)


def test_trailing_bytes(tmp_path, li_bytes):
    p = tmp_path / "Li.nn"
    p.write_bytes(li_bytes + b"\0" * 12)
    with pytest.raises(PotentialFileError, match="unexpected bytes"):
        read_nn(p)


def test_ascii_file_errors(tmp_path):
    text = nn_to_ascii(tiny_nn_files()["Li"]).splitlines()
    p = tmp_path / "Li.nn.ascii"
    p.write_text("\n".join(text[:12]) + "\n")
    with pytest.raises(PotentialFileError, match="file ends before field"):
        read_nn_ascii(p)
    bad = list(text)
    bad[2] = "  abc"
    p.write_text("\n".join(bad) + "\n")
    with pytest.raises(PotentialFileError, match=r"line 3: field 'Wsize'"):
        read_nn_ascii(p)


def test_species_missing_from_env():
    files = tiny_nn_files()
    files["Li"] = replace(files["Li"], envtypes=["Li"], source="Li.nn")
    with pytest.raises((SpeciesError, PotentialFileError), match="Li.nn"):
        AenetTorch(files)


def test_network_setup_mismatch():
    nn = tiny_nn_files()["Li"]
    with pytest.raises(PotentialFileError, match="do not belong together"):
        parse_nn_bytes(nn_to_bytes(replace(nn, sfval_avg=nn.sfval_avg[:-1], sfval_cov=nn.sfval_cov[:-1],
                                           sfval_min=nn.sfval_min[:-1], sfval_max=nn.sfval_max[:-1],
                                           sf=nn.sf[:-1], sfparam=nn.sfparam[:-1], sfenv=nn.sfenv[:-1])), "X.nn")


def test_behler_setup_refused():
    files = tiny_nn_files()
    files["Si"] = replace(files["Si"], sftype="Behler2011", source="Si.nn")
    with pytest.raises(PotentialFileError, match="Si.nn.*Behler2011.*not supported yet"):
        AenetTorch(files)


def test_file_given_for_wrong_species(tmp_path):
    files = tiny_nn_files()
    write_nn(files["Li"], tmp_path / "Li.nn")
    write_nn(files["Si"], tmp_path / "Si.nn")
    with pytest.raises(SpeciesError, match="potential of 'Li', but was given for 'Si'"):
        AenetTorch({"Li": tmp_path / "Li.nn", "Si": tmp_path / "Li.nn"})


def test_ascii_to_binary_keeps_first_token():
    nn = replace(tiny_nn_files()["Li"], description="Descriptor for Li$$", trainset_file="a b", normalized=-1)
    compat = to_binary_compatible(nn)
    assert compat.description == "Descriptor" and compat.trainset_file == "a" and compat.normalized == 1
