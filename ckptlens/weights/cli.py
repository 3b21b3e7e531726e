"""``ckptlens convert SRC DST --to native|FORMAT [--dtype D] [--max-shard-size S] [--plan]``."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any

from ckptlens.lenses.errors import LensError
from ckptlens.weights.convert import DTYPE_HELP


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convert`` on an ``argparse`` subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a checkpoint directory (HF <-> native, HF -> HF across formats)",
        description="Plan from the config and safetensors headers, check everything, then "
        "stream the tensors into a temporary sibling directory renamed into place at the end.",
    )
    parser.add_argument("src", help="source checkpoint directory (HF or native)")
    parser.add_argument(
        "dst", help="destination directory (created with its parents; must not exist)"
    )
    parser.add_argument("--to", required=True, help=f"'native' or a format: {_format_names()}")
    parser.add_argument(
        "--dtype", default=None, help=f"cast floating tensors to {DTYPE_HELP} (extra [torch])"
    )
    parser.add_argument(
        "--max-shard-size", default="5GB", help="largest output shard (default 5GB)"
    )
    parser.add_argument(
        "--moe-layout",
        choices=("per_expert", "fused"),
        default=None,
        help="HF expert tensors: one per expert or fused 3-D (default: as the source)",
    )
    parser.add_argument(
        "--generation",
        choices=("v5", "v4"),
        default=None,
        help="transformers generation of the HF config's spelling (default: the source's "
        "when converting back to the format it came from, else v5)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing destination directory, once the new one is complete",
    )
    parser.add_argument("--plan", action="store_true", help="print the plan and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=run_convert)
    return parser


def run_convert(args: argparse.Namespace) -> int:
    """The ``convert`` handler: 0 on success, 2 on a rejected input (problems on stderr)."""
    from ckptlens.weights.convert import convert

    _terminate_cleanly()
    try:
        plan = convert(
            args.src,
            args.dst,
            to=args.to,
            dtype=args.dtype,
            max_shard_size=args.max_shard_size,
            plan_only=args.plan,
            progress=not (args.quiet or args.plan),
            moe_layout=args.moe_layout,
            generation=args.generation,
            overwrite=args.overwrite,
        )
    except LensError as error:
        print(f"ckptlens convert: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nckptlens convert: interrupted; {args.dst} was not created", file=sys.stderr)
        return 130
    print(plan.describe(verbose=args.plan))
    if not args.plan:
        print(f"wrote {args.dst}")
    return 0


def _format_names() -> str:
    from ckptlens import formats

    return ", ".join(formats.names())


def _terminate_cleanly() -> None:
    """SIGTERM unwinds like Ctrl-C, so the staging directory is removed on the way out."""

    def raise_interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_interrupt)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m ckptlens.weights.cli convert ...``)."""
    parser = argparse.ArgumentParser(prog="ckptlens")
    add_convert_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
