"""aenet-torch-ase: aenet neural-network potentials in PyTorch and ASE."""

__version__ = "0.1.0"

import os as _os

# Idle OpenMP threads sleep instead of spinning. Two OpenMP pools live in this
# process (torch's and vesin's neighbour list); with spinning, the idle pool's
# threads keep both cores of a 2-core machine busy after every parallel region
# and the other pool's next operation waits for them: a 256-atom neighbour list
# took 4-16 ms instead of 2.4 ms and the int32->int64 copy of its result 4-8 ms
# instead of 0.06 ms. Read when the OpenMP runtime starts, i.e. only if torch
# was not imported before this package; an explicit setting is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
