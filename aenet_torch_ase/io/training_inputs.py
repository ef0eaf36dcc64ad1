"""aenet's training input files: `generate.in` (aenet generate.x) and
`train.in` (aenet-PyTorch's dialect; aenet train.x's METHOD line is read too).

Same rules as the other aenet inputs (`input_files`): case-insensitive
keywords in any order, `!`/`#`/`%` comment lines, Fortran numbers. Blocks
whose length is not announced (SETUPS, NETWORKS) run until the next keyword,
so they may come before TYPES. Paths are resolved against the file's folder;
quote paths with spaces. Every error names the file and line.
"""

from __future__ import annotations

import os
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..io.nn_file import ACTIVATION_CODES
from .input_files import KeywordLines, counted_lines, fortran_float, fortran_int, key_values

GENERATE_KEYWORDS = ("OUTPUT", "TYPES", "SETUPS", "FILES", "FORCES", "FORCESPERCENT", "SEED",
                     "TIMING", "DEBUG", "VERBOSITY")
TRAIN_KEYWORDS = ("TRAININGSET", "TESTPERCENT", "ITERATIONS", "ITERWRITE", "BATCHSIZE", "NPSEED",
                  "PHSEED", "FORCES", "MAXENERGY", "MAXFORCES", "MEMORY_MODE", "SAVE_ENERGIES",
                  "SAVE_FORCES", "VERBOSE", "METHOD", "REGULARIZATION", "NETWORKS", "MODE",
                  "SAVE_BATCHES", "LOAD_BATCHES", "SAMPLING", "TIMING", "DEBUG", "VERBOSITY")
#: optimisers the trainer has (train.x's bfgs, lm, ekf, online_sd are not)
METHODS = ("adam", "adamw", "sgd")


def _path(text: str, base: Path) -> Path:
    p = Path(text)
    return p if p.is_absolute() else base / p


def _words(f: KeywordLines, text: str, number: int) -> List[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError as err:
        raise f.error(f"cannot read {text!r}: {err}", number) from None


def _one_value(f: KeywordLines, words: List[str], number: int, what: str) -> str:
    if len(words) < 2:
        raise f.error(f"{words[0]} needs a value on the same line ({what})", number)
    return words[1]


def _block_until_keyword(f: KeywordLines, keywords, max_lines: Optional[int] = None) -> List[Tuple[int, str]]:
    """Lines after the current one up to (not including) the next keyword
    line, at most `max_lines`."""
    out = []
    while f.pos < len(f.lines) and (max_lines is None or len(out) < max_lines):
        number, text = f.lines[f.pos]
        if text.split()[0].upper() in keywords:
            break
        out.append((number, text))
        f.pos += 1
    return out


def _counted_block(f: KeywordLines, keyword: str, number: int, what: str, words: List[str], keywords):
    """`KEYWORD [n]` followed by n lines (n on the keyword line or the next line)."""
    if len(words) > 1:
        n = fortran_int(words[1], f, number, f"number of {what}")
    else:
        n_line, n_text = f.next_line(keyword, number)
        n = fortran_int(n_text.split()[0], f, n_line, f"number of {what}")
    return counted_lines(f, keyword, number, n, keywords)


# --------------------------------------------------------------------------
# generate.in


@dataclass
class GenerateInput:
    """Contents of `generate.in`. Energies in eV."""

    output: Path
    types: Dict[str, float]  # symbol -> atomic reference energy E_atom (eV)
    setups: Dict[str, Path]
    files: List[Path]
    forces: bool = False
    forces_percent: float = 100.0  # of the structures with forces, used for force training
    seed: int = 0  # picks the FORCESPERCENT subset
    source: str = ""


def read_generate_in(path) -> GenerateInput:
    """Read aenet's `generate.in` (OUTPUT, TYPES, SETUPS, FILES, FORCES, FORCESPERCENT)."""
    f = KeywordLines(path)
    base = f.path.parent
    output = base / "refdata.train"
    types: Dict[str, float] = {}
    setups: Dict[str, Path] = {}
    files: List[Path] = []
    forces, percent, seed = False, None, 0
    setups_line = None
    for number, line in f:
        words = _words(f, line, number)
        key = words[0].upper()
        if key == "OUTPUT":
            output = _path(_one_value(f, words, number, "training-set file name"), base)
        elif key == "TYPES":
            for t_line, t_text in _counted_block(f, "TYPES", number, "TYPES", words, GENERATE_KEYWORDS):
                parts = t_text.split()
                if len(parts) < 2:
                    raise f.error(f"TYPES line needs 'symbol  E_atom(eV)', got {t_text!r}", t_line)
                types[parts[0]] = fortran_float(parts[1], f, t_line, f"atomic energy of {parts[0]}")
        elif key == "SETUPS":
            setups_line = number
            # up to the next keyword, at most one line per species when TYPES came first
            for s_line, s_text in _block_until_keyword(f, GENERATE_KEYWORDS, len(types) or None):
                parts = _words(f, s_text, s_line)
                if len(parts) != 2:
                    raise f.error(f"SETUPS line needs 'symbol  setup-file', got {s_text!r}", s_line)
                setups[parts[0]] = _path(parts[1], base)
        elif key == "FILES":
            for p_line, p_text in _counted_block(f, "FILES", number, "FILES", words, GENERATE_KEYWORDS):
                files.append(_path(p_text.strip().strip("'\""), base))
        elif key == "FORCES":
            forces = True
        elif key == "FORCESPERCENT":
            percent = fortran_float(_one_value(f, words, number, "percent"), f, number, "FORCESPERCENT")
            if not 0.0 <= percent <= 100.0:
                raise f.error(f"FORCESPERCENT must be between 0 and 100, got {percent}", number)
        elif key == "SEED":
            seed = fortran_int(_one_value(f, words, number, "integer"), f, number, "SEED")
        elif key in ("TIMING", "DEBUG", "VERBOSITY"):
            pass  # output detail of generate.x; nothing to change here
        else:
            raise f.error(f"unknown keyword {words[0]!r} (generate.in knows {', '.join(GENERATE_KEYWORDS)})",
                          number)
    if not types:
        raise f.error("no TYPES section: e.g. 'TYPES' / '2' / 'Ti -1604.6' / 'O -432.5'")
    missing = [t for t in types if t not in setups]
    if missing:
        raise f.error(f"no SETUPS entry for {missing}: add 'symbol  path/to/X.fingerprint.stp' lines",
                      setups_line)
    extra = [t for t in setups if t not in types]
    if extra:
        raise f.error(f"SETUPS names {extra}, which are not in TYPES", setups_line)
    if not files:
        raise f.error("no FILES section: 'FILES' / number of files / one structure path per line")
    if percent is not None and not forces:
        forces = True  # FORCESPERCENT implies force data
    return GenerateInput(output=output, types=types, setups=setups, files=files, forces=forces,
                         forces_percent=100.0 if percent is None else percent, seed=seed,
                         source=str(f.path))


# --------------------------------------------------------------------------
# train.in


@dataclass
class NetworkSpec:
    """One NETWORKS line: output file and hidden layers [(nodes, activation)].

    `file` is as written: a relative name is resolved in the training's
    output folder (train.in's folder, or `train --out DIR`)."""

    file: Path
    hidden: List[Tuple[int, str]]
    line: int = 0


@dataclass
class TrainInput:
    """Contents of `train.in` (aenet-PyTorch defaults where a keyword is absent)."""

    trainingset: Path
    networks: Dict[str, NetworkSpec]
    test_percent: float = 10.0
    iterations: int = 10
    iter_write: int = 1
    batch_size: int = 256
    np_seed: int = 1
    ph_seed: int = 1
    forces: bool = False
    alpha: float = 0.1
    max_energy: Optional[float] = None  # eV/atom (cohesive); structures above are left out
    max_forces: Optional[float] = None  # eV/A; force structures above leave force training
    method: str = "adamw"
    method_params: Dict[str, float] = field(default_factory=lambda: {"lr": 1e-3})
    regularization: float = 0.0
    save_energies: bool = False
    save_forces: bool = False
    verbose: bool = False
    memory_mode: str = "cpu"
    mode: str = "train"
    source: str = ""


def _method(f: KeywordLines, text: str, number: int):
    words = text.split()
    if "=" not in words[0]:
        # aenet train.x style: 'adam mu=0.001 ...'
        name, rest = words[0].lower(), " ".join(words[1:])
    else:
        name, rest = None, text
    params = {k.lower(): v for k, v in key_values(rest, f, number).items()} if rest.strip() else {}
    if name is None:
        if "method" not in params:
            raise f.error("METHOD line needs 'method=adamw lr=0.0001' (or aenet's 'adam mu=0.001')", number)
        name = params.pop("method").lower()
    if name not in METHODS:
        raise f.error(f"training method {name!r} is not available here; use one of {METHODS} "
                      f"(aenet train.x's bfgs, lm, ekf and online_sd are not implemented)", number)
    if "mu" in params and "lr" not in params:  # train.x's name of the learning rate
        params["lr"] = params.pop("mu")
    known = {"lr", "lr_final", "b1", "b2", "eps", "momentum", "batchsize", "samplesize"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise f.error(f"unknown METHOD parameters {unknown} (known: {sorted(known)})", number)
    values = {k: fortran_float(v, f, number, f"METHOD {k}") for k, v in params.items()}
    for k in ("lr", "lr_final", "eps"):
        if k in values and not values[k] > 0:
            raise f.error(f"METHOD {k} must be positive, got {values[k]}", number)
    for k in ("b1", "b2", "momentum"):
        if k in values and not 0 <= values[k] < 1:
            raise f.error(f"METHOD {k} must be in [0, 1), got {values[k]}", number)
    return name, values


def _network_line(f: KeywordLines, text: str, number: int, base: Path):
    parts = _words(f, text, number)
    if len(parts) < 3:
        raise f.error(f"NETWORKS line needs 'symbol  file  n_hidden  nodes:activation ...', got {text!r}",
                      number)
    n_hidden = fortran_int(parts[2], f, number, "number of hidden layers")
    layers = parts[3:]
    if len(layers) != n_hidden:
        raise f.error(f"{n_hidden} hidden layers announced but {len(layers)} 'nodes:activation' given",
                      number)
    hidden = []
    for item in layers:
        if ":" not in item:
            raise f.error(f"hidden layer {item!r} must be 'nodes:activation', e.g. '15:tanh'", number)
        nodes, act = item.split(":", 1)
        if act.lower() not in ACTIVATION_CODES:
            raise f.error(f"unknown activation {act!r}; use one of {sorted(ACTIVATION_CODES)}", number)
        n = fortran_int(nodes, f, number, "number of nodes")
        if n < 1:
            raise f.error(f"a hidden layer needs at least one node, got {n}", number)
        hidden.append((n, act.lower()))
    return parts[0], NetworkSpec(file=Path(parts[1]), hidden=hidden, line=number)


def read_train_in(path) -> TrainInput:
    """Read aenet-PyTorch's `train.in`."""
    f = KeywordLines(path)
    base = f.path.parent
    opts = {}
    networks: Dict[str, NetworkSpec] = {}
    trainingset = None
    for number, line in f:
        words = _words(f, line, number)
        key = words[0].upper()
        if key == "TRAININGSET":
            trainingset = _path(_one_value(f, words, number, "training-set file"), base)
        elif key == "TESTPERCENT":
            v = fortran_float(_one_value(f, words, number, "percent"), f, number, "TESTPERCENT")
            if not 0.0 <= v < 100.0:
                raise f.error(f"TESTPERCENT must be in [0, 100), got {v}", number)
            opts["test_percent"] = v
        elif key in ("ITERATIONS", "ITERWRITE", "BATCHSIZE"):
            v = fortran_int(_one_value(f, words, number, "whole number"), f, number, key)
            if v < (0 if key == "ITERATIONS" else 1):
                raise f.error(f"{key} must be positive, got {v}", number)
            opts[{"ITERATIONS": "iterations", "ITERWRITE": "iter_write", "BATCHSIZE": "batch_size"}[key]] = v
        elif key in ("NPSEED", "PHSEED"):
            opts["np_seed" if key == "NPSEED" else "ph_seed"] = fortran_int(
                _one_value(f, words, number, "integer"), f, number, key)
        elif key == "FORCES":
            opts["forces"] = True
            # the weight follows on the same line ('FORCES alpha=0.9') or the next one; optional
            a_line, a_text = None, None
            if len(words) > 1:
                a_line, a_text = number, line.split(None, 1)[1]
            elif f.pos < len(f.lines) and "=" in f.lines[f.pos][1] and \
                    f.lines[f.pos][1].split("=")[0].strip().lower() == "alpha":
                a_line, a_text = next(f)
            if a_text is not None:
                kv = {k.lower(): v for k, v in key_values(a_text, f, a_line).items()}
                if "alpha" not in kv:
                    raise f.error(f"FORCES takes 'alpha=<weight>', got {a_text!r}", a_line)
                alpha = fortran_float(kv.pop("alpha"), f, a_line, "alpha")
                if kv:
                    raise f.error(f"unknown FORCES parameters {sorted(kv)} (known: alpha)", a_line)
                if not 0.0 <= alpha <= 1.0:
                    raise f.error(f"alpha must be in [0, 1], got {alpha}", a_line)
                opts["alpha"] = alpha
        elif key in ("MAXENERGY", "MAXFORCES", "REGULARIZATION"):
            v = fortran_float(_one_value(f, words, number, "number"), f, number, key)
            if key == "REGULARIZATION" and v < 0:
                raise f.error(f"REGULARIZATION (weight decay) must not be negative, got {v}", number)
            if key == "MAXFORCES" and v <= 0:
                raise f.error(f"MAXFORCES must be positive (eV/A), got {v}", number)
            opts[{"MAXENERGY": "max_energy", "MAXFORCES": "max_forces", "REGULARIZATION": "regularization"}[key]] = v
        elif key == "METHOD":
            m_line, m_text = f.next_line("METHOD", number)
            opts["method"], opts["method_params"] = _method(f, m_text, m_line)
        elif key == "NETWORKS":
            for n_line, n_text in _block_until_keyword(f, TRAIN_KEYWORDS):
                sym, spec = _network_line(f, n_text, n_line, base)
                if sym in networks:
                    raise f.error(f"species {sym!r} has two NETWORKS lines", n_line)
                same = [(e, o) for e, o in networks.items()
                        if os.path.normpath(o.file) == os.path.normpath(spec.file)]
                if same:
                    e, o = same[0]
                    raise f.error(f"NETWORKS lines {o.line} ({e}) and {n_line} ({sym}) name the same file "
                                  f"{str(spec.file)!r}: one network would overwrite the other; give each "
                                  f"species its own file", n_line)
                networks[sym] = spec
        elif key in ("SAVE_ENERGIES", "SAVE_FORCES", "VERBOSE"):
            opts[key.lower()] = True
        elif key == "MEMORY_MODE":
            v = _one_value(f, words, number, "cpu or gpu").lower()
            if v not in ("cpu", "gpu"):
                raise f.error(f"MEMORY_MODE takes cpu or gpu, got {v!r}", number)
            opts["memory_mode"] = v
        elif key == "MODE":
            v = _one_value(f, words, number, "train or transfer").lower()
            if v not in ("train", "transfer"):
                raise f.error(f"MODE takes train or transfer, got {v!r}", number)
            opts["mode"] = v
        elif key in ("SAVE_BATCHES", "LOAD_BATCHES"):
            warnings.warn(f"{f.path}, line {number}: {key} is not needed (the featurised training set is "
                          "the cache) and is ignored", stacklevel=2)
        elif key in ("SAMPLING", "TIMING", "DEBUG", "VERBOSITY"):
            pass  # train.x output/sampling details without effect here
        else:
            raise f.error(f"unknown keyword {words[0]!r} (train.in knows {', '.join(TRAIN_KEYWORDS)})", number)
    if trainingset is None:
        raise f.error("no TRAININGSET line: name the file written by 'aenet-torch generate'")
    if not networks:
        raise f.error("no NETWORKS section: 'NETWORKS' then 'symbol  file  2  15:tanh 15:tanh' per species")
    return TrainInput(trainingset=trainingset, networks=networks, source=str(f.path), **opts)
