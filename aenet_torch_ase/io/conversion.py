"""`.nn` <-> `.nn.ascii` conversion (aenet-PyTorch's nnASCII2bin, both ways)."""

from __future__ import annotations

from .nn_ascii import read_nn_ascii, to_binary_compatible, write_nn_ascii
from .nn_binary import read_nn, write_nn
from .potential_files import is_ascii_potential


def convert_potential(src, dst) -> str:
    """Convert `src` to the other format and write `dst`; returns a label.

    ASCII -> binary stores what nnASCII2bin stores (first token of the text
    fields, logical true = 1), so aenet-PyTorch's own pairs convert to
    identical bytes. Binary -> ASCII keeps every field; reals are printed as
    %24.17f as aenet-PyTorch does, so very small weights lose digits.
    """
    if is_ascii_potential(src):
        write_nn(to_binary_compatible(read_nn_ascii(src)), dst)
        return "ASCII -> binary .nn"
    write_nn_ascii(read_nn(src), dst)
    return "binary .nn -> ASCII .nn.ascii"
