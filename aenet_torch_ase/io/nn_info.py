"""Human-readable summary of one `.nn` file (`aenet-torch info`)."""

from __future__ import annotations

from .nn_file import ACTIVATIONS, NNFile


def describe_nn(nn: NNFile) -> str:
    """Architecture, species, descriptor setup, normalisation and the
    angular-convention hint of a potential file, as text."""
    from ..potential.build import guess_angular_convention

    lines = [f"file            : {nn.source}", f"species         : {nn.atomtype}"]
    arch = "-".join(str(n) for n in nn.nnodes)
    acts = ", ".join(ACTIVATIONS.get(a, f"code {a}") for a in nn.activations)
    lines += [
        f"network         : {arch} ({acts}); {len(nn.weights)} weights",
        f"environment     : {' '.join(nn.envtypes)}",
        f"descriptor      : {nn.sftype}, {nn.nsf} functions",
    ]
    if nn.is_chebyshev:
        rrc, rn, arc, an = nn.chebyshev_parameters
        lines += [
            f"  radial        : Rc = {rrc:g} A, order {rn}",
            f"  angular       : Rc = {arc:g} A, order {an}",
        ]
    lines += [
        f"  RMIN          : {nn.rc_min:g} A (sizes aenet's neighbour arrays only)",
        f"  statistics    : {nn.neval} atoms",
        f"training set    : {nn.trainset_file} ({nn.nstrucs} structures, {nn.natoms_tot} atoms)",
        f"energy scaling  : scale {nn.scale:.10g} 1/eV, shift {nn.shift:.10g} eV/atom",
        "E_atom (eV)     : " + ", ".join(f"{t} {e:.10g}" for t, e in zip(nn.type_names, nn.e_atom)),
    ]
    guess = guess_angular_convention(nn)
    hint = {
        "legacy": "statistics suggest the LEGACY angular convention (aenet < 2.0.4): use angular='legacy'",
        "2.0.4": "statistics are consistent with the aenet >= 2.0.4 angular convention (default)",
        None: "no hint (too few angular functions or no statistics)",
    }[guess]
    lines.append(f"angular domain  : {hint}")
    return "\n".join(lines)
