"""The ``tinycnn`` command.

    tinycnn info        versions and the devices this machine offers
"""

from __future__ import annotations

import argparse
import platform
import sys


def _info(args) -> int:
    import numpy as np

    import tinycnn
    from tinycnn import backend

    print(f"tinycnn {tinycnn.__version__}")
    print(f"python  {platform.python_version()} ({sys.executable})")
    print(f"numpy   {np.__version__}")
    try:
        import cupy

        print(f"cupy    {cupy.__version__}")
    except ImportError:
        print("cupy    not installed (GPU support: pip install 'tinycnn[cuda12]' or 'tinycnn[cuda13]')")
    print(f"cuda    {'available' if backend.cuda_is_available() else 'not available'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinycnn", description="A from-scratch, educational CNN engine.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = commands.add_parser("info", help="show versions and available devices")
    info.set_defaults(handler=_info)
    return parser


def _version() -> str:
    from tinycnn import __version__

    return __version__


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
