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
    import os
    from pathlib import Path

    from ..errors import InputFileError

    src_path, dst_path = Path(src), Path(dst)
    if not src_path.is_file():
        raise InputFileError(f"convert: input {src} does not exist")
    if src_path.resolve() == dst_path.resolve() or (dst_path.exists() and os.path.samefile(src_path, dst_path)):
        raise InputFileError(f"convert: input and output are the same file ({src}); the conversion would "
                             f"replace it with the other format: give another output name")
    if is_ascii_potential(src):
        write_nn(to_binary_compatible(read_nn_ascii(src)), dst)
        return "ASCII -> binary .nn"
    write_nn_ascii(read_nn(src), dst)
    return "binary .nn -> ASCII .nn.ascii"
