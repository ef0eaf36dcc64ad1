"""Quick matplotlib pictures of structures (projections), for a person to look at.

OVITO renders publication pictures (analysis issue); these need only matplotlib.
"""

from __future__ import annotations

import numpy as np

from ..io.atomic_write import atomic_write_bytes

#: colours by element (CPK-like)
COLORS = {"Li": "#cc80ff", "Si": "#f0c8a0", "Ti": "#bfc2c7", "O": "#ff0d0d"}


def save_png(fig, path):
    """Write a matplotlib figure as PNG, atomically."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(str(path), buf.getvalue())


def plot_structure(atoms, path, *, axis: int = 2, title: str = "", max_atoms: int = 200_000):
    """Projection of `atoms` along `axis` (0, 1, 2 = x, y, z), atoms coloured
    by element, drawn back to front; written as PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = atoms.positions
    symbols = np.array(atoms.get_chemical_symbols())
    if len(atoms) > max_atoms:
        keep = np.random.default_rng(0).choice(len(atoms), max_atoms, replace=False)
        pos, symbols = pos[keep], symbols[keep]
    u, v = [k for k in range(3) if k != axis]
    order = np.argsort(pos[:, axis])
    colors = np.array([COLORS.get(s, "#808080") for s in symbols])
    fig, ax = plt.subplots(figsize=(5, 5))
    size = max(0.5, 4000.0 / max(len(pos), 1))
    ax.scatter(pos[order, u], pos[order, v], c=colors[order], s=size, edgecolors="k", linewidths=0.1)
    for sym in sorted(set(symbols)):
        ax.scatter([], [], c=COLORS.get(sym, "#808080"), label=sym, edgecolors="k", linewidths=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{'xyz'[u]} (A)")
    ax.set_ylabel(f"{'xyz'[v]} (A)")
    ax.set_title(title or f"{atoms.get_chemical_formula(mode='metal', empirical=True)}, {len(atoms)} atoms")
    save_png(fig, path)
    plt.close(fig)


def plot_packing(packing, path, *, title: str = ""):
    """Side view (x-z) of a sphere packing as circles; PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, ax = plt.subplots(figsize=(5, 5))
    order = np.argsort(packing.centers[:, 1])
    for k in order:
        c = packing.centers[k]
        ax.add_patch(Circle((c[0], c[2]), packing.radii[k], alpha=0.6,
                            color=plt.cm.viridis(packing.radii[k] / packing.radii.max())))
    ax.set_xlim(0, packing.box[0])
    ax.set_ylim(0, max(packing.box[2], packing.height()) * 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("x (A)")
    ax.set_ylabel("z (A)")
    ax.set_title(title or f"{len(packing.radii)} spheres, heap height {packing.height():.0f} A")
    save_png(fig, path)
    plt.close(fig)
