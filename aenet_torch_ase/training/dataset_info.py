"""Describe a reference data set: counts, composition and energy ranges, and
the seed's Fig. 1 (distribution of the A/B atom ratio; histograms of A and
B atoms per structure) as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..io.atomic_write import atomic_write_text
from .dataset import Reference


def composition_table(references: Sequence[Reference], elements: Optional[List[str]] = None):
    """(elements, counts): counts[b, k] = atoms of elements[k] in structure b."""
    symbols = [r.atoms.get_chemical_symbols() for r in references]
    if elements is None:
        seen = sorted({s for sy in symbols for s in sy})
        elements = seen
    counts = np.array([[sy.count(e) for e in elements] for sy in symbols], dtype=int)
    return list(elements), counts


def describe(references: Sequence[Reference], e_atom: Optional[Dict[str, float]] = None,
             elements: Optional[List[str]] = None) -> Dict[str, object]:
    """Counts, composition and energy ranges (eV, eV/atom, eV/A) as a dict."""
    elements, counts = composition_table(references, elements)
    n = counts.sum(1)
    energy = np.array([r.energy for r in references], dtype=float)
    info: Dict[str, object] = {
        "structures": len(references), "atoms": int(n.sum()), "elements": elements,
        "atoms_per_structure": {"min": int(n.min()), "max": int(n.max()), "mean": float(n.mean())},
        "atoms_of_element": {e: int(counts[:, k].sum()) for k, e in enumerate(elements)},
        "structures_with_forces": int(sum(r.forces is not None for r in references)),
    }
    if np.isfinite(energy).any():
        per_atom = energy / n
        info["total_energy_per_atom_eV"] = {"min": float(np.nanmin(per_atom)), "max": float(np.nanmax(per_atom)),
                                             "mean": float(np.nanmean(per_atom))}
    if e_atom:
        from .dataset import cohesive_energy

        coh = np.array([cohesive_energy(r, e_atom) for r in references]) / n
        info["cohesive_energy_per_atom_eV"] = {"min": float(coh.min()), "max": float(coh.max()),
                                                "mean": float(coh.mean())}
    forces = [np.abs(r.forces).max() for r in references if r.forces is not None]
    if forces:
        info["max_force_component_eV_per_A"] = float(max(forces))
    if len(elements) >= 2:
        a, b = counts[:, 0], counts[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(b > 0, a / np.maximum(b, 1), np.nan)
        finite = ratio[np.isfinite(ratio)]
        if finite.size:
            info[f"{elements[0]}/{elements[1]}_ratio"] = {"min": float(finite.min()), "max": float(finite.max()),
                                                        "mean": float(finite.mean()),
                                                        f"structures_without_{elements[1]}": int((b == 0).sum())}
    return info


def plot_composition(references: Sequence[Reference], path, elements: Optional[List[str]] = None,
                     title: str = ""):
    """The seed's Fig. 1: (a) distribution of the A/B ratio, (b, c) histograms
    of A and B atoms per structure. A, B = the first two elements."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..analysis.pictures import save_png

    elements, counts = composition_table(references, elements)
    panels = 1 + min(len(elements), 2) if len(elements) >= 2 else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.4 * panels, 3.6), squeeze=False)
    axes = axes[0]
    if len(elements) >= 2:
        a, b = counts[:, 0], counts[:, 1]
        ratio = a[b > 0] / b[b > 0]
        axes[0].hist(ratio, bins=40, color="tab:blue", edgecolor="white")
        axes[0].set_xlabel(f"{elements[0]}/{elements[1]} ratio")
        axes[0].set_ylabel("structures")
        axes[0].set_title(f"(a) {elements[0]}/{elements[1]} ratio" +
                          (f" ({int((b == 0).sum())} without {elements[1]})" if (b == 0).any() else ""), fontsize=9)
        for k, ax in enumerate(axes[1:]):
            values = counts[:, k]
            ax.hist(values, bins=min(40, max(5, len(np.unique(values)))), color=f"C{k + 1}", edgecolor="white")
            ax.set_xlabel(f"{elements[k]} atoms per structure")
            ax.set_ylabel("structures")
            ax.set_title(f"({'bc'[k]}) {elements[k]} atoms", fontsize=9)
    else:
        axes[0].hist(counts[:, 0], bins=40)
        axes[0].set_xlabel(f"{elements[0]} atoms per structure")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def dataset_info(references: Sequence[Reference], out_dir, e_atom: Optional[Dict[str, float]] = None,
                 elements: Optional[List[str]] = None, title: str = "") -> Dict[str, object]:
    """Write `dataset_info.json` and `composition.png` into `out_dir`; return the info."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = describe(references, e_atom, elements)
    atomic_write_text(str(out / "dataset_info.json"), json.dumps(info, indent=2) + "\n")
    plot_composition(references, out / "composition.png", elements, title)
    info["files"] = [str(out / "dataset_info.json"), str(out / "composition.png")]
    return info
