"""Stress-strain curves and their metrics.

Units: strain dimensionless (engineering), stress in GPa (tension positive),
toughness in GPa (= GJ/m^3, the area under the curve).

Definitions (all on the curve along the loading axis):
- Young's modulus: least-squares slope over the elastic window (default
  0-2 % strain), with R^2 and its standard error for correlated noise:
  the least-squares error times the square root of the residuals'
  statistical inefficiency (`statistical_inefficiency`). MD stress noise
  at 300 K stays correlated over tens of records, and the plain
  least-squares error, which assumes independent points, came out 1.4-2.0x
  below the scatter of the modulus between repeated runs.
- smoothing: Savitzky-Golay (symmetric, zero phase: it does not shift the
  peak) over `smooth_points` points and at least `smooth_strain` of strain
  (0.5 %; 2 % for pull runs, whose grip force on a particle of ~1,000
  atoms fluctuates by ~0.6 GPa from record to record at 300 K).
- ultimate tensile strength (UTS): maximum of the smoothed stress, and its strain.
- yield point (0.2 % offset): first strain after the elastic window where
  the smoothed curve falls below the elastic line shifted by 0.2 % strain,
  by more than twice the noise left after smoothing, and stays below it for
  at least 0.5 % strain (a noise dip is no yield); none when the modulus
  itself is not determined (standard error above 30 % of it).
- failure: the smoothed stress falls, after the UTS, below half of the UTS
  and stays there to the end of the run, at least 2 % strain; the failure strain is where that
  drop starts (the last point at or above 90 % of the UTS before it). None
  ("no failure within the strain reached") otherwise: thermal noise, a
  plateau or a partial drop are not failure.
- compression (the strain ends negative): strain and stress are sign-flipped
  so shortening and compressive stress count positive; `compression` is True.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import InputFileError
from ..io.records import read_csv_rows

AXIS_COLUMN = {"x": "sxx_GPa", "y": "syy_GPa", "z": "szz_GPa"}
PRESSURE_COLUMN = {"x": "Pxx", "y": "Pyy", "z": "Pzz"}
BAR_TO_GPA = 1e-4


@dataclass
class StressStrain:
    strain: np.ndarray
    stress: np.ndarray  # GPa along the loading axis, tension positive
    label: str = ""
    axis: str = "y"
    time_ps: Optional[np.ndarray] = None
    extra: Dict[str, np.ndarray] = field(default_factory=dict)
    compression: bool = False
    #: smoothing span (strain): 0.5 %; pull runs 2 % (the force on a particle's grip is noisier)
    smooth_strain: float = 0.005

    def __post_init__(self):
        # compression runs are analysed with strain and stress sign-flipped
        # (shortening and compressive stress positive), so that modulus,
        # strength and failure keep their meaning
        if not self.compression and len(self.strain) and self.strain[-1] < 0:
            self.strain = -np.asarray(self.strain, dtype=float)
            self.stress = -np.asarray(self.stress, dtype=float)
            self.compression = True

    # ------------------------------------------------------------ readers
    @classmethod
    def from_run(cls, path, label: Optional[str] = None) -> "StressStrain":
        """From a run directory (or its stress_strain.csv): the `load` stage."""
        path = Path(path)
        run_dir = path if path.is_dir() else path.parent
        csv_path = path / "stress_strain.csv" if path.is_dir() else path
        if not csv_path.exists():
            raise InputFileError(f"{csv_path}: no stress_strain.csv (is this a run directory?)")
        mode, axis = "tensile", "y"
        if (run_dir / "run.json").exists():
            proto = json.loads((run_dir / "run.json").read_text())["protocol"]
            mode, axis = proto["mode"], proto["axis"]
        header, table = read_csv_rows(csv_path)  # a torn last line is skipped with a warning
        if "stage" not in header:
            raise InputFileError(f"{csv_path}: no 'stage' column: not a stress_strain.csv of aenet-torch stretch")
        rows = [dict(zip(header, r)) for r in table if r[header.index("stage")] == "load"]
        if len(rows) < 3:
            raise InputFileError(f"{csv_path}: fewer than 3 rows of the loading stage")
        column = "pull_stress_GPa" if mode == "pull" else AXIS_COLUMN[axis]
        try:
            data = {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "stage"}
        except ValueError as err:
            raise InputFileError(f"{csv_path}: a value is not a number ({err})") from None
        return cls(strain=data["strain"], stress=data[column], label=label or run_dir.name, axis=axis,
                   time_ps=data["time_ps"], extra=data, smooth_strain=0.02 if mode == "pull" else 0.005)

    @classmethod
    def from_lammps_log(cls, path, axis: str = "y", strain_column: str = "v_strain",
                        label: Optional[str] = None) -> "StressStrain":
        """From a LAMMPS log: the last thermo block that has `strain_column`.
        Pressures (metal units: bar) become stress in GPa, tension positive."""
        blocks = read_lammps_log(path)
        blocks = [b for b in blocks if strain_column in b]
        if not blocks:
            raise InputFileError(f"{path}: no thermo block with a '{strain_column}' column")
        b = blocks[-1]
        p = PRESSURE_COLUMN[axis]
        if p not in b:
            raise InputFileError(f"{path}: thermo output has no {p} column (add it to thermo_style)")
        time_ps = b["Time"] - b["Time"][0] if "Time" in b else None
        return cls(strain=b[strain_column], stress=-b[p] * BAR_TO_GPA, label=label or Path(path).stem,
                   axis=axis, time_ps=time_ps, extra=b)

    # ------------------------------------------------------------ metrics
    def smoothed(self, smooth_points: int = 11) -> np.ndarray:
        """Savitzky-Golay smoothing over at least `smooth_points` points and at
        least 0.5 % strain (thermal noise of small MD cells is correlated over
        picoseconds, many records)."""
        from scipy.signal import savgol_filter

        n = len(self.stress)
        if n > 2:
            spacing = float(np.median(np.abs(np.diff(self.strain)))) or 1.0
            smooth_points = max(smooth_points, int(self.smooth_strain / spacing) | 1)
        w = min(smooth_points, n - (1 - n % 2))  # odd, at most n
        if w < 5:
            return self.stress.copy()
        return savgol_filter(self.stress, w, 2, mode="interp")

    def young_modulus(self, window: Sequence[float] = (0.0, 0.02)) -> Dict[str, float]:
        """Least-squares slope (GPa) over `window`. When the run did not reach
        the window's end (or it holds fewer than 3 points) no modulus is
        given: value None and a `note` saying why (a partial fit can even be
        negative)."""
        sel = (self.strain >= window[0]) & (self.strain <= window[1])
        reached = float(self.strain.max()) if len(self.strain) else 0.0
        note = None
        if reached < window[1] * (1 - 1e-6):
            note = (f"the run reached strain {reached:.4f}, below the end of the elastic window "
                    f"{window[0]:g}-{window[1]:g}: run further or choose a smaller --window")
        elif sel.sum() < 3:
            note = f"fewer than 3 points in the elastic window {window[0]:g}-{window[1]:g}: record more often"
        if note is not None:
            return {"value": None, "stderr": None, "stderr_independent": None, "inefficiency": None,
                    "r2": None, "intercept": None,
                    "window": [float(window[0]), float(window[1])], "note": note}
        x, y = self.strain[sel], self.stress[sel]
        (slope, intercept), cov = np.polyfit(x, y, 1, cov=True)
        fit = slope * x + intercept
        r2 = 1.0 - ((y - fit) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300)
        inefficiency = statistical_inefficiency(y - fit, scale=float(np.abs(y).max()))
        independent = float(np.sqrt(cov[0, 0]))
        return {"value": float(slope), "stderr": independent * float(np.sqrt(inefficiency)),
                "stderr_independent": independent, "inefficiency": inefficiency, "r2": float(r2),
                "intercept": float(intercept), "window": [float(window[0]), float(window[1])]}

    def ultimate(self, smooth_points: int = 11) -> Dict[str, float]:
        s = self.smoothed(smooth_points)
        k = int(np.argmax(s))
        return {"stress": float(s[k]), "strain": float(self.strain[k])}

    def yield_point(self, offset: float = 0.002, window=(0.0, 0.02), smooth_points: int = 11,
                    sustain: float = 0.005):
        e = self.young_modulus(window)
        if e["value"] is None or e["value"] <= 0 or e["stderr"] > 0.3 * e["value"]:
            return None  # no elastic line to offset: the fit is noise (see the note of young_modulus)
        s = self.smoothed(smooth_points)
        line = e["value"] * (self.strain - offset) + e["intercept"]
        after = self.strain > window[1] * 0.5
        # below the offset line by more than the noise left in the smoothed curve
        n_smooth = max(1, len(self.strain) and int(self.smooth_strain / (float(np.median(np.abs(np.diff(self.strain))))
                                                                         or 1.0)))
        noise = float(np.std(self.stress - s)) / np.sqrt(max(1, min(n_smooth, len(s))))
        below = after & (s < line - 2.0 * noise)
        for k in np.flatnonzero(below):
            span = (self.strain >= self.strain[k]) & (self.strain <= self.strain[k] + sustain)
            if self.strain[-1] >= self.strain[k] + sustain and below[span].all():
                return {"stress": float(s[k]), "strain": float(self.strain[k]), "offset": offset}
        return None

    def failure_strain(self, smooth_points: int = 11, fraction: float = 0.5, sustain: float = 0.02):
        """See the module docstring; None when the run shows no failure (the
        low stress must also last `sustain` strain: 2 %)."""
        s = self.smoothed(smooth_points)
        k_uts = int(np.argmax(s))
        uts = float(s[k_uts])
        if uts <= 0:
            return None
        low = s < (1.0 - fraction) * uts
        low[:k_uts] = False
        # first point from which the stress stays below the threshold to the end
        stays = np.flatnonzero(low & (np.cumsum(~low[::-1])[::-1] == 0))
        if len(stays) == 0:
            return None
        k_low = int(stays[0])
        if self.strain[-1] - self.strain[k_low] < sustain:
            return None
        high = np.flatnonzero(s[:k_low] >= 0.9 * uts)
        k = int(high[-1]) if len(high) else k_uts
        return {"strain": float(self.strain[k]), "drop": float(s[k] - s[-1])}

    def toughness(self) -> float:
        """Area under the curve up to the last point (GPa = GJ/m^3)."""
        trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has trapz only
        return float(trapezoid(self.stress, self.strain))

    def summary(self, window=(0.0, 0.02), smooth_points: int = 11) -> dict:
        return {
            "label": self.label,
            "axis": self.axis,
            "compression": self.compression,
            "points": int(len(self.strain)),
            "max_strain": float(self.strain.max()),
            "young_modulus_GPa": self.young_modulus(window),
            "yield_0.2pct_offset": self.yield_point(window=window, smooth_points=smooth_points),
            "ultimate_tensile_strength_GPa": self.ultimate(smooth_points),
            "failure": self.failure_strain(smooth_points=smooth_points),
            "toughness_GPa": self.toughness(),
            "units": {"stress": "GPa (tension positive)", "strain": "engineering", "toughness": "GPa = GJ/m^3"},
            "definitions": "see aenet_torch_ase.analysis.stress_strain",
        }


def statistical_inefficiency(residuals, scale: float = 0.0) -> float:
    """How many records of a series hold one independent sample: g = 1 + 2
    sum_k rho_k, rho_k the autocorrelation of `residuals` at lag k, summed
    while it stays positive (the initial positive sequence; lags up to a
    quarter of the series). The variance of a least-squares slope through
    evenly spaced points with stationary correlated noise is g times the
    independent-points one. 1 for independent or too few (< 8) points, and
    for residuals at round-off (rms <= 1e-10 `scale`, e.g. the largest
    |stress|): those carry no correlation to measure."""
    e = np.asarray(residuals, dtype=float)
    n = e.size
    if n < 8:
        return 1.0
    e = e - e.mean()
    c0 = float(e @ e) / n
    if c0 <= (1e-10 * scale) ** 2:
        return 1.0
    g = 1.0
    for k in range(1, n // 4 + 1):
        rho = float((e[k:] * e[:-k]).sum()) / (n * c0)
        if rho <= 0.0:
            break
        g += 2.0 * rho
    return g


def read_lammps_log(path) -> List[Dict[str, np.ndarray]]:
    """Thermo blocks of a LAMMPS log: one dict {column: array} per run."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise InputFileError(f"cannot read LAMMPS log {path}: {err}") from err
    blocks = []
    k = 0
    while k < len(lines):
        words = lines[k].split()
        if words[:1] == ["Step"]:
            header, rows = words, []
            k += 1
            while k < len(lines):
                parts = lines[k].split()
                if len(parts) != len(header):
                    break
                try:
                    rows.append([float(x) for x in parts])
                except ValueError:
                    break
                k += 1
            if rows:
                arr = np.array(rows)
                blocks.append({h: arr[:, c] for c, h in enumerate(header)})
            continue
        k += 1
    return blocks


def plot_curves(curves: Sequence[StressStrain], path, *, marks: bool = True, window=(0.0, 0.02),
                elastic_only: bool = False, title: str = "stress-strain curve") -> None:
    """Stress-strain curves (several overlaid): the raw curve faint, the
    smoothed one bold, the elastic fit over its window with E +- SE, the UTS,
    and yield / failure only where they are real (see the module docstring);
    PNG at `path`. elastic_only: the fits only (ramps that end at the
    window have no strength or failure to mark)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pictures import save_png

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    notes = []
    for c in curves:
        line, = ax.plot(c.strain * 100, c.stress, lw=0.8, alpha=0.3)
        color = line.get_color()
        s = c.smoothed()
        ax.plot(c.strain * 100, s, color=color, lw=2.0, label=f"{c.label} (smoothed)")
        if not marks:
            continue
        e = c.young_modulus(window)
        if e["value"] is not None:
            xs = np.linspace(window[0], min(c.strain.max(), window[1]), 20)
            ax.plot(xs * 100, e["value"] * xs + e["intercept"], "--", color="k" if len(curves) == 1 else color, lw=1.2,
                    label=f"E = {e['value']:.1f} +- {e['stderr']:.1f} GPa (fit {window[0]:.0%}-{window[1]:.0%})")
        if elastic_only:
            continue
        u = c.ultimate()
        ax.plot(u["strain"] * 100, u["stress"], "^", color=color, ms=8, label=f"UTS {u['stress']:.2f} GPa")
        y = c.yield_point(window=window)
        if y is not None:
            ax.plot(y["strain"] * 100, y["stress"], "s", color=color, ms=6, label=f"0.2 % yield {y['stress']:.2f} GPa")
        f = c.failure_strain()
        if f is not None:
            k = int(np.argmin(np.abs(c.strain - f["strain"])))
            ax.plot(c.strain[k] * 100, s[k], "X", color=color, ms=8, label=f"failure at {f['strain']:.1%}")
        else:
            notes.append(f"{c.label}: no failure within the strain reached ({c.strain.max():.1%})")
    ax.set_xlabel("strain (%)")
    ax.set_ylabel("stress (GPa)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=7)
    if notes:
        ax.text(0.01, 0.98, "\n".join(notes), transform=ax.transAxes, ha="left", va="top", fontsize=7)
    ax.set_title(title)
    save_png(fig, path)
    plt.close(fig)
