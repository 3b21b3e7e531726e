"""``ckptlens convert | describe | explain | check | verify | demo``.

Each subcommand lives with the code it drives; this module only assembles the parser, so
``ckptlens --help`` imports neither torch nor transformers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ckptlens.lenses.errors import LensError


def _describe(args: argparse.Namespace) -> int:
    from ckptlens import formats

    fmt = formats.get(args.format)
    print(f"{fmt.name}: model_type {fmt.model_type!r}, architectures {list(fmt.architectures)}")
    print(fmt.lens.describe())
    return 0


def _explain(args: argparse.Namespace) -> int:
    from ckptlens import formats

    config = json.loads(Path(args.config).read_text())
    fmt = formats.get(args.format) if args.format else formats.detect(config)
    print(f"{args.config}: {fmt.name}")
    print(fmt.lens.explain(config))
    return 0


def _check(args: argparse.Namespace) -> int:
    from ckptlens import formats, laws

    names = formats.names() if args.format == "all" else (args.format,)
    failed = False
    for name in names:
        report = laws.check(formats.get(name), laws=args.laws or laws.LAWS, profile=args.profile)
        print(report)
        failed = failed or not report.ok
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from ckptlens.demo import main as demo

    return demo(args.demo_args)


def build_parser() -> argparse.ArgumentParser:
    from ckptlens.laws.profiles import PROFILES
    from ckptlens.laws.properties import LAWS
    from ckptlens.verify import add_verify_parser
    from ckptlens.weights.cli import add_convert_parser

    parser = argparse.ArgumentParser(
        prog="ckptlens", description="Lawful lenses between HF checkpoints and a native layout."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(commands)

    describe = commands.add_parser("describe", help="print a format's mapping table")
    describe.add_argument("format", help="a format name (see `ckptlens describe --help`)")
    describe.set_defaults(handler=_describe)

    explain = commands.add_parser(
        "explain", help="read a config.json and show each view field with where it came from"
    )
    explain.add_argument("config", help="path to an HF config.json")
    explain.add_argument("--format", default=None, help="skip detection and use this format")
    explain.set_defaults(handler=_explain)

    check = commands.add_parser("check", help="run the law suite on a format")
    check.add_argument("format", help="a format name, or 'all'")
    check.add_argument("--profile", choices=sorted(PROFILES), default=None)
    check.add_argument("--laws", nargs="*", choices=LAWS, default=None)
    check.set_defaults(handler=_check)

    add_verify_parser(commands)

    demo = commands.add_parser(
        "demo", help="convert a tiny built-in Llama checkpoint HF -> native -> HF"
    )
    demo.add_argument("demo_args", nargs=argparse.REMAINDER, help="options for the demo")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except LensError as error:
        print(f"ckptlens {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"ckptlens {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
