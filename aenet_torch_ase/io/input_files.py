"""aenet's keyword input files: `predict.in` and `*.fingerprint.stp`.

Shared rules (spec section 3): keywords are case-insensitive, in any order;
blank lines and lines starting with `!`, `#` or `%` are ignored; a keyword's
data follow on the same line or the next line(s). Fortran number syntax
(`0.55d0`) is accepted. Errors name the file and line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import InputFileError


class KeywordLines:
    """Significant lines of an aenet input file with their line numbers."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8-sig")  # a byte-order mark is not a keyword
        except (OSError, UnicodeDecodeError) as err:
            raise InputFileError(f"cannot read input file {self.path}: {err}") from err
        self.lines = []  # (line number, text)
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped and stripped[0] not in "!#%":
                self.lines.append((number, stripped))
        self.pos = 0

    def error(self, message, number=None) -> InputFileError:
        where = f"{self.path}, line {number}" if number else str(self.path)
        return InputFileError(f"{where}: {message}")

    def __iter__(self):
        return self

    def __next__(self):
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]

    def next_line(self, after_keyword: str, after_number: int):
        if self.pos >= len(self.lines):
            raise self.error(f"file ends where the data of {after_keyword} should follow", after_number)
        return next(self)


def counted_lines(f: "KeywordLines", keyword: str, number: int, n: int, keywords) -> list:
    """The `n` data lines of a counted block (TYPES, FILES, ...), checking the
    count: a keyword inside the block, or a data line after it, means the
    announced number is wrong (say so, instead of 'unknown keyword')."""
    if n < 0:
        raise f.error(f"{keyword}: the number of entries must not be negative, got {n}", number)
    out = []
    for _ in range(n):
        if f.pos >= len(f.lines):
            raise f.error(f"{keyword} announces {n} entries but the file ends after {len(out)}: "
                          f"correct the count", number)
        line_number, text = f.lines[f.pos]
        if text.split()[0].upper() in keywords:
            raise f.error(f"{keyword} announces {n} entries but only {len(out)} come before "
                          f"{text.split()[0]} (line {line_number}): correct the count", number)
        out.append(next(f))
    if f.pos < len(f.lines):
        line_number, text = f.lines[f.pos]
        if text.split()[0].upper() not in keywords:
            raise f.error(f"{keyword} announces {n} entries but more follow (line {line_number}: "
                          f"{text!r}): correct the count", number)
    return out


def fortran_float(text: str, where: KeywordLines, number: int, what: str) -> float:
    try:
        return float(text.replace("d", "e").replace("D", "e"))
    except ValueError:
        raise where.error(f"{what}: {text!r} is not a number", number) from None


def fortran_int(text: str, where: KeywordLines, number: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise where.error(f"{what}: {text!r} is not a whole number", number) from None


def key_values(text: str, where: KeywordLines, number: int) -> Dict[str, str]:
    """Parse `a=1 b = 2 c=x` into {'a': '1', 'b': '2', 'c': 'x'} (keys as written)."""
    tokens = text.replace("=", " = ").split()
    out = {}
    k = 0
    while k < len(tokens):
        if k + 2 < len(tokens) and tokens[k + 1] == "=":
            out[tokens[k]] = tokens[k + 2]
            k += 3
        else:
            raise where.error(f"expected 'name=value' pairs, got {text!r}", number)
    return out


# --------------------------------------------------------------------------
# predict.in


@dataclass
class PredictInput:
    """Contents of an aenet `predict.in` (paths resolved against its folder)."""

    types: List[str]
    networks: Dict[str, Path]
    files: List[Path] = field(default_factory=list)
    forces: bool = False
    print_atomic_energies: bool = False
    relax: Optional[Dict[str, str]] = None
    verbosity: str = "normal"
    timing: bool = False
    debug: bool = False


PREDICT_KEYWORDS = ("TYPES", "NETWORKS", "FILES", "FORCES", "PRINT_ATOMIC_ENERGIES", "RELAX", "VERBOSITY",
                    "TIMING", "DEBUG")


def read_predict_in(path) -> PredictInput:
    """Read aenet's `predict.in` (TYPES, NETWORKS, FILES, FORCES, RELAX, ...)."""
    f = KeywordLines(path)
    base = f.path.parent
    types: List[str] = []
    networks: Dict[str, Path] = {}
    files: List[Path] = []
    opts = {}
    for number, line in f:
        words = line.split()
        key = words[0].upper()
        if key == "TYPES":
            n_line, n_text = f.next_line("TYPES", number)
            n = fortran_int(n_text.split()[0], f, n_line, "number of TYPES")
            for t_line, t_text in counted_lines(f, "TYPES", number, n, PREDICT_KEYWORDS):
                types.append(t_text.split()[0])
        elif key == "NETWORKS":
            n_needed = len(types) if types else None
            if n_needed is None:
                raise f.error("NETWORKS must come after TYPES (it needs the number of species)", number)
            for _ in range(n_needed):
                n_line, n_text = f.next_line("NETWORKS", number)
                try:
                    parts = shlex.split(n_text, comments=False)
                except ValueError as err:
                    raise f.error(f"cannot read the NETWORKS line {n_text!r}: {err}", n_line) from None
                if len(parts) < 2:
                    raise f.error(f"NETWORKS line needs 'symbol  path', got {n_text!r}", n_line)
                networks[parts[0]] = base / parts[1]
        elif key == "FILES":
            n_line, n_text = f.next_line("FILES", number)
            n = fortran_int(n_text.split()[0], f, n_line, "number of FILES")
            for p_line, p_text in counted_lines(f, "FILES", number, n, PREDICT_KEYWORDS):
                files.append(base / p_text.strip().strip("'\""))
        elif key == "FORCES":
            opts["forces"] = True
        elif key == "PRINT_ATOMIC_ENERGIES":
            opts["print_atomic_energies"] = True
        elif key == "TIMING":
            opts["timing"] = True
        elif key == "DEBUG":
            opts["debug"] = True
        elif key == "VERBOSITY":
            if len(words) < 2 or words[1].lower() not in ("low", "normal", "high"):
                raise f.error("VERBOSITY takes low, normal or high", number)
            opts["verbosity"] = words[1].lower()
        elif key == "RELAX":
            r_line, r_text = f.next_line("RELAX", number)
            opts["relax"] = _relax_settings(f, r_text, r_line)
        else:
            raise f.error(
                f"unknown keyword {words[0]!r} (predict.in knows TYPES, NETWORKS, FILES, FORCES, "
                f"PRINT_ATOMIC_ENERGIES, RELAX, VERBOSITY, TIMING, DEBUG)",
                number,
            )
    if not types:
        raise f.error("no TYPES section: list the species, e.g. 'TYPES' / '2' / 'Li' / 'Si'")
    missing = [t for t in types if t not in networks]
    if missing:
        raise f.error(f"no NETWORKS entry for {missing}: add a line 'symbol  \"path/to/file.nn\"' each")
    return PredictInput(types=types, networks={t: networks[t] for t in types}, files=files, **opts)


RELAX_METHODS = ("bfgs", "lbfgs", "fire")


def _relax_settings(f: KeywordLines, text: str, number: int) -> dict:
    """RELAX's 'method=bfgs steps=99 F_conv=0.01', checked: known names, numbers that make sense."""
    settings = {k.lower(): v for k, v in key_values(text, f, number).items()}
    unknown = sorted(set(settings) - {"method", "steps", "f_conv"})
    if unknown:
        raise f.error(f"unknown RELAX parameters {unknown} (known: method, steps, F_conv)", number)
    out = {"method": settings.get("method", "bfgs").lower()}
    if out["method"] not in RELAX_METHODS:
        raise f.error(f"RELAX method={settings['method']!r} is not available; use one of {RELAX_METHODS}", number)
    out["steps"] = fortran_int(settings.get("steps", "99"), f, number, "RELAX steps")
    if out["steps"] < 0:
        raise f.error(f"RELAX steps must not be negative, got {out['steps']}", number)
    out["f_conv"] = fortran_float(settings.get("f_conv", "0.01"), f, number, "RELAX F_conv")
    if not out["f_conv"] > 0:
        raise f.error(f"RELAX F_conv (eV/A) must be positive, got {out['f_conv']}", number)
    return out


# --------------------------------------------------------------------------
# fingerprint setup (*.stp)


@dataclass
class FingerprintSetup:
    """An aenet structural-fingerprint setup (`X.fingerprint.stp`). Cutoffs in Angstrom."""

    atom: str
    env: List[str]
    rmin: float
    basis: str  # 'chebyshev' or 'behler2011'
    radial_rc: float = 0.0
    radial_n: int = 0
    angular_rc: float = 0.0
    angular_n: int = 0
    description: str = ""
    source: str = ""

    @property
    def n_features(self) -> int:
        base = (self.radial_n + 1) + (self.angular_n + 1)
        return base * (2 if len(self.env) > 1 else 1)


def read_fingerprint_setup(path) -> FingerprintSetup:
    """Read an aenet `*.fingerprint.stp` file.

    Behler2011 (symmetry-function) setups are recognised and refused with an
    explicit 'not supported yet' error.
    """
    f = KeywordLines(path)
    atom = None
    env: List[str] = []
    rmin = None
    basis = None
    params: Dict[str, str] = {}
    descr: List[str] = []
    for number, line in f:
        words = line.split()
        key = words[0].upper()
        if key == "DESCR":
            while True:
                d_line, d_text = f.next_line("DESCR (missing END DESCR?)", number)
                if d_text.upper().replace(" ", "") == "ENDDESCR":
                    break
                descr.append(d_text)
        elif key == "ATOM":
            if len(words) < 2:
                raise f.error("ATOM needs the central species, e.g. 'ATOM  Ti'", number)
            atom = words[1]
        elif key == "ENV":
            if len(words) < 2:
                raise f.error("ENV needs the number of species, then one per line", number)
            n = fortran_int(words[1], f, number, "ENV count")
            for _ in range(n):
                e_line, e_text = f.next_line("ENV", number)
                env.append(e_text.split()[0])
        elif key == "RMIN":
            if len(words) < 2:
                raise f.error("RMIN needs a distance in Angstrom", number)
            rmin = fortran_float(words[1], f, number, "RMIN")
        elif key in ("BASIS", "FUNCTIONS"):
            kv = key_values(" ".join(words[1:]), f, number) if len(words) > 1 else {}
            extra = sorted(k for k in kv if k.lower() != "type")
            if extra:
                raise f.error(f"unknown BASIS parameters {extra} on the BASIS line (it takes type=...; the "
                              f"Chebyshev parameters go on the next line)", number)
            btype = {k.lower(): v for k, v in kv.items()}.get("type", "").lower()
            if btype == "chebyshev":
                basis = "chebyshev"
                p_line, p_text = f.next_line("BASIS", number)
                params = key_values(p_text, f, p_line)
                unknown = sorted(set(params) - {"radial_Rc", "radial_N", "angular_Rc", "angular_N"})
                if unknown:
                    raise f.error(f"unknown Chebyshev parameters {unknown} (known: radial_Rc, radial_N, "
                                  f"angular_Rc, angular_N; names are case-sensitive)", p_line)
                params["_line"] = str(p_line)
            elif btype == "behler2011":
                raise f.error(
                    "Behler2011 symmetry functions are not supported yet; only "
                    "'BASIS type=Chebyshev' setups can be used",
                    number,
                )
            else:
                raise f.error(f"unknown basis type {kv.get('type')!r}: use 'BASIS type=Chebyshev'", number)
        else:
            raise f.error(
                f"unknown keyword {words[0]!r} (a setup file knows DESCR, ATOM, ENV, RMIN, BASIS)", number
            )
    if atom is None:
        raise f.error("no ATOM line: name the central species, e.g. 'ATOM  Ti'")
    if not env:
        raise f.error("no ENV section: list the environment species")
    if basis is None:
        raise f.error("no BASIS line: add 'BASIS type=Chebyshev' and the parameter line")
    if rmin is None:
        rmin = 1.0  # aenet's default (it warns too)
    line = int(params.pop("_line"))
    need = ("radial_Rc", "radial_N", "angular_Rc", "angular_N")
    missing = [k for k in need if k not in params]
    if missing:
        raise f.error(f"Chebyshev parameters {missing} missing (names are case-sensitive)", line)
    return FingerprintSetup(
        atom=atom, env=env, rmin=rmin, basis=basis,
        radial_rc=fortran_float(params["radial_Rc"], f, line, "radial_Rc"),
        radial_n=fortran_int(params["radial_N"], f, line, "radial_N"),
        angular_rc=fortran_float(params["angular_Rc"], f, line, "angular_Rc"),
        angular_n=fortran_int(params["angular_N"], f, line, "angular_N"),
        description="\n".join(descr), source=str(f.path),
    )
