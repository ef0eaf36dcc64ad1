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
