"""Exception classes, one per kind of bad input.

Every message names the file (or element, or structure) and says how to fix it.
"""


class AenetError(Exception):
    """Base class of all errors raised by aenet-torch-ase for bad input."""


class PotentialFileError(AenetError, ValueError):
    """A `.nn` / `.nn.ascii` file is unreadable, corrupt or inconsistent."""


class InputFileError(AenetError, ValueError):
    """An aenet input file (predict.in, *.stp, XSF, ...) is malformed."""


class SpeciesError(AenetError, ValueError):
    """A structure holds an element that the potential does not cover, or
    the species files of a potential do not fit together."""


class StructureError(AenetError, ValueError):
    """A structure cannot be evaluated (NaN positions, zero-volume cell, ...)."""


class ProtocolError(AenetError, ValueError):
    """A simulation protocol setting is out of range or inconsistent."""


class OutputError(AenetError, ValueError):
    """An output folder or file cannot be written, or holds an earlier run
    that would be overwritten (pass overwrite=True / --overwrite)."""


class ResultError(AenetError, ArithmeticError):
    """A model returned a non-finite energy, force or stress, or a simulation
    produced a structure that makes no physical sense (atoms collapsed)."""
