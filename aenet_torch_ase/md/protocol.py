"""The mechanical-test protocol: one definition of every number a run uses.

The ASE runner (`md.run`) and the LAMMPS exporter read the same `Protocol`,
so rates, damping times, durations and units cannot drift apart.

Units: time in ps (durations) and fs (timestep, damping), temperature in K,
pressure in bar, strain rate in 1/s, force tolerance in eV/A. Defaults are
the seed's protocol: CG minimisation; 20 ps NVT at 300 K (Nose-Hoover,
Tdamp = 100 dt); 50 ps of uniaxial tension at 1e10 1/s along y with the
two lateral axes at 1 bar (MTK barostat, Pdamp = 1000 dt); dt = 1 fs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Optional

from ..errors import ProtocolError

AXES = {"x": 0, "y": 1, "z": 2}


@dataclass
class Protocol:
    mode: str = "tensile"  # tensile | compress | pull | nvt
    axis: str = "y"
    strain_rate: float = 1e10  # 1/s, engineering; negative (or mode=compress) compresses
    temperature: float = 300.0  # K
    timestep: float = 1.0  # fs
    relax_time: float = 20.0  # ps of NVT before loading
    time: float = 50.0  # ps of loading
    pressure: float = 1.0  # bar, on the lateral axes
    tdamp_steps: float = 100.0  # thermostat damping in timesteps
    pdamp_steps: float = 1000.0  # barostat damping in timesteps
    lateral: str = "npt"  # npt (barostatted lateral axes) | fixed
    minimize_fmax: float = 0.01  # eV/A; 0 skips the minimisation
    minimize_steps: int = 2000
    fixed_fraction: float = 0.2  # pull: share of the length held by the fixed grip (low side)
    pulled_fraction: float = 0.2  # pull: share of the length in the moving grip (high side)
    record_every: int = 100  # steps between CSV rows
    frame_every: int = 1000  # steps between trajectory frames
    checkpoint_every: int = 1000  # steps between checkpoints
    seed: int = 12345  # initial velocities

    def __post_init__(self):
        self.validate()

    @property
    def axis_index(self) -> int:
        return AXES[self.axis]

    @property
    def tdamp(self) -> float:
        """Thermostat damping time (fs)."""
        return self.tdamp_steps * self.timestep

    @property
    def pdamp(self) -> float:
        """Barostat damping time (fs)."""
        return self.pdamp_steps * self.timestep

    @property
    def signed_rate(self) -> float:
        """Strain rate (1/s) with compression negative."""
        return -abs(self.strain_rate) if self.mode == "compress" else self.strain_rate

    @property
    def rate_per_fs(self) -> float:
        return self.signed_rate * 1e-15

    @property
    def relax_steps(self) -> int:
        return int(round(self.relax_time * 1000.0 / self.timestep))

    @property
    def load_steps(self) -> int:
        return int(round(self.time * 1000.0 / self.timestep))

    def validate(self) -> None:
        def bad(msg):
            return ProtocolError(f"protocol: {msg}")

        if self.mode not in ("tensile", "compress", "pull", "nvt"):
            raise bad(f"mode must be tensile, compress, pull or nvt, not {self.mode!r}")
        if self.axis not in AXES:
            raise bad(f"axis must be x, y or z, not {self.axis!r}")
        if self.lateral not in ("npt", "fixed"):
            raise bad(f"lateral must be npt or fixed, not {self.lateral!r}")
        for name in ("temperature", "timestep", "tdamp_steps", "pdamp_steps"):
            if not getattr(self, name) > 0:
                raise bad(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("relax_time", "time", "minimize_fmax"):
            if getattr(self, name) < 0:
                raise bad(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("fixed_fraction", "pulled_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise bad(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.fixed_fraction + self.pulled_fraction >= 0.95:
            raise bad(f"fixed_fraction + pulled_fraction = {self.fixed_fraction + self.pulled_fraction:g} "
                      f"leaves no free part between the grips: keep the sum below 0.95 (e.g. 0.2 each)")
        for name in ("record_every", "frame_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise bad(f"{name} must be a positive number of steps")
        if self.timestep > 5.0:
            raise bad(f"timestep {self.timestep} fs is too long for atomistic MD (give fs, not ps)")
        if abs(self.strain_rate) > 1e12:
            raise bad(f"strain rate {self.strain_rate} 1/s is unphysically fast (units are 1/s)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Protocol":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ProtocolError(f"protocol: unknown settings {sorted(unknown)}")
        return cls(**d)


def parse_duration(text: Optional[str], default_unit: str = "ps") -> Optional[float]:
    """'20ps' -> 20.0, '500fs' -> 0.5, '2ns' -> 2000.0, '20' -> 20.0 (ps)."""
    if text is None:
        return None
    t = str(text).strip().lower()
    for unit, factor in (("ns", 1000.0), ("ps", 1.0), ("fs", 1e-3)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * factor
    return float(t) * {"ps": 1.0, "fs": 1e-3, "ns": 1000.0}[default_unit]
