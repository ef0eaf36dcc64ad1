"""Pull a particle or a stack until it has broken, and no longer.

    pull_until_failure(particle, calc, Protocol(mode="pull", ...), "RUN_DIR")

Runs the protocol (`md.run`) in pieces of `chunk_steps` and stops once the
stress-strain curve shows failure (`StressStrain.failure_strain`: the
smoothed stress stays below half its maximum for 2 % strain) followed by
`after_failure` more strain, or at the protocol's end. A stopped run is
left paused with its checkpoint (`run.json` status 'paused', 'stopped' says
why), so `run(..., resume=True)` or a call with a larger protocol time can
continue it. A folder holding a finished or paused run of the same
protocol is continued, not overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..analysis.stress_strain import StressStrain
from .protocol import Protocol
from .run import _write_json, run


def _status(out: Path):
    try:
        return json.loads((out / "run.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def broken(out: Path, after_failure: float) -> bool:
    """Has the run in `out` failed, `after_failure` strain ago?"""
    try:
        curve = StressStrain.from_run(out)
    except Exception:  # too few rows yet
        return False
    f = curve.failure_strain()
    return f is not None and curve.strain[-1] >= f["strain"] + after_failure


def pull_until_failure(atoms, calc, protocol: Protocol, out, *, chunk_steps: int = 5000,
                       after_failure: float = 0.05, overwrite: bool = False, progress: bool = True) -> Path:
    out = Path(out)
    meta = _status(out)
    if meta is not None and not overwrite:
        if meta["protocol"] != protocol.to_dict():
            raise ValueError(f"{out} holds a run of another protocol: pass overwrite=True or another folder")
        if meta.get("status") == "finished" or meta.get("stopped"):
            return out
        resume = (out / "checkpoint.npz").exists()
    else:
        resume = False
    while True:
        # the structure is given on resume too: its per-atom arrays and info (a stack's 'particle',
        # a particle's 'radius') then stay in the frames written after it
        run(atoms, calc, protocol, out, resume=resume, overwrite=overwrite and not resume,
            progress=progress, max_steps=chunk_steps)
        resume = True
        meta = _status(out)
        if meta.get("status") == "finished":
            return out
        if broken(out, after_failure):
            meta["stopped"] = f"failed: stopped {after_failure:g} strain after the failure strain"
            _write_json(out, meta)
            return out
