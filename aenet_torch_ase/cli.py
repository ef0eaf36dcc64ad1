"""Command line: `aenet-torch <command> ...`. Parses arguments and calls the
package's functions; no logic of its own."""

from __future__ import annotations

import argparse
import sys

from .errors import AenetError


def _predict(args):
    from .predict import run_predict

    run_predict(args.predict_in, args.structures or None, angular=args.angular, device=args.device)


def _info(args):
    from .io.nn_info import describe_nn
    from .io.potential_files import read_potential_file

    for k, path in enumerate(args.files):
        if k:
            print()
        print(describe_nn(read_potential_file(path)))


def _convert(args):
    from .io.conversion import convert_potential

    kind = convert_potential(args.input, args.output)
    print(f"wrote {args.output} ({kind})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aenet-torch",
        description="aenet neural-network potentials in PyTorch and ASE.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("predict", help="energies/forces like aenet's predict.x, from a predict.in")
    q.add_argument("predict_in", help="aenet predict.in (TYPES, NETWORKS, FILES, FORCES, ...)")
    q.add_argument("structures", nargs="*", help="structure files overriding FILES (XSF or any ASE format)")
    q.add_argument("--angular", choices=["2.0.4", "legacy"], default="2.0.4",
                   help="angular descriptor convention (legacy: potentials from aenet < 2.0.4)")
    q.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    q.set_defaults(func=_predict)

    q = sub.add_parser("info", help="describe .nn / .nn.ascii potential files")
    q.add_argument("files", nargs="+")
    q.set_defaults(func=_info)

    q = sub.add_parser("convert", help="convert .nn <-> .nn.ascii (direction from the input's content)")
    q.add_argument("input")
    q.add_argument("output")
    q.set_defaults(func=_convert)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AenetError as err:
        print(f"aenet-torch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
