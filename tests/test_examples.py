"""Every tutorial example runs in its reduced (--quick) mode and writes its
figures (the seed's Figs. 1-12 at small size)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# example -> files it must write (relative to --out)
EXPECTED = {
    "01_dataset": ["composition.png", "dataset_info.json"],
    "02_train": ["rmse.png", "train_log.csv", "Li.nn", "Si.nn", "Li.nn.ascii"],
    "03_build_models": ["bulk_Li13Si4.png", "nanoparticle_Li13Si4.png", "stack_Li13Si4.png", "amorphous_LiSi3.png",
                        "amorphous_LiSi3.extxyz"],
    "04_bulk_tension": ["stress_strain_overlay.png", "a-Li13Si4/analysis/stress_strain.png",
                        "a-LiSi3/analysis/shear_strain_0.040.png", "a-LiSi/analysis/summary.json"],
    "05_nanoparticles": ["particle_LiSi.png", "stress_strain_overlay.png", "np-Li13Si4/analysis/summary.json"],
    "06_stacks": ["packing.png", "stack.png", "stack-pull/analysis/stress_strain.png"],
    "07_to_lammps": ["in.lammps", "data.lmp", "Li.nn", "Si.nn", "README.txt", "model.png"],
    "08_seed_nanoparticles": ["stress_strain_overlay.png", "results.md", "results.json", "np-LiSi3/analysis/crack_origin.png",
                              "np-Li13Si4/analysis/shear_strain_0.060.png"],
    "09_seed_stacks": ["stress_strain_overlay.png", "results.md", "stack_LiSi.png", "stack-LiSi/analysis/summary.json"],
}
#: examples that take --bulk-dir: they share the small amorphous cells they make in --quick mode
SHARES_CELLS = {"08_seed_nanoparticles", "09_seed_stacks"}


@pytest.fixture(scope="module")
def cells_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cells")


def test_every_example_is_covered():
    assert sorted(p.stem for p in (ROOT / "examples").glob("0*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_quick(name, tmp_path, cells_dir):
    out = tmp_path / name
    env = dict(os.environ, MPLBACKEND="Agg")
    extra = ["--bulk-dir", str(cells_dir)] if name in SHARES_CELLS else []
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--quick", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rel in EXPECTED[name]:
        path = out / rel
        assert path.is_file() and path.stat().st_size > 0, f"{name} did not write {rel}"
        if path.suffix == ".png":
            image = np.asarray(Image.open(path).convert("RGB"), dtype=float)
            assert image.std() > 5, f"{rel} is blank"
