"""aenet-torch-ase: aenet neural-network potentials in PyTorch and ASE."""

__version__ = "0.1.0"

from .calculator import AenetTorch  # noqa: E402
from .errors import (  # noqa: E402
    AenetError,
    InputFileError,
    PotentialFileError,
    ProtocolError,
    SpeciesError,
    StructureError,
)
from .io.potential_files import read_potential as load_potential  # noqa: E402

__all__ = [
    "AenetTorch",
    "load_potential",
    "AenetError",
    "InputFileError",
    "PotentialFileError",
    "ProtocolError",
    "SpeciesError",
    "StructureError",
    "__version__",
]
