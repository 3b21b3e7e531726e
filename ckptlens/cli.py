"""``ckptlens convert | describe | explain | check | verify | demo``.

Each subcommand lives with the code it drives; this module only assembles the parser, so
``ckptlens --help`` imports neither torch nor transformers nor Hypothesis. A command whose
optional dependency is missing says which extra to install and exits 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ckptlens import __version__
from ckptlens.lenses.errors import LensError

# The optional dependencies, and the extra of ``pyproject.toml`` that installs each.
EXTRAS = {"torch": "torch", "transformers": "verify", "safetensors": "verify", "hypothesis": "laws"}
# A command needs all of its extra, whichever module was found missing first.
COMMAND_EXTRAS = {"verify": "verify", "check": "laws"}


def _describe(args: argparse.Namespace) -> int:
    from ckptlens import formats

    fmt = formats.get(args.format)
    print(f"{fmt.name}: model_type {fmt.model_type!r}, architectures {list(fmt.architectures)}")
    print(fmt.lens.describe().render(_width()))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from ckptlens import formats
    from ckptlens.files import read_json_object
    from ckptlens.native.checkpoint import FORMAT_NAME

    path = Path(args.config)
    if path.is_dir():
        path = path / "config.json"
    config = read_json_object(path, "a JSON config")
    if config.get("format") == FORMAT_NAME and not args.format:
        from ckptlens.native.explain import explain_native

        print(f"{path}: {FORMAT_NAME} (a native checkpoint config)")
        print(explain_native(config).render(_width()))
        return 0
    fmt = formats.get(args.format) if args.format else formats.detect(config)
    print(f"{path}: {fmt.name}")
    print(fmt.lens.explain(config).render(_width()))
    return 0


def _check(args: argparse.Namespace) -> int:
    import hypothesis.configuration

    # Hypothesis keeps its example database and caches under ``.hypothesis/`` in the working
    # directory; a user running ``ckptlens check`` should not find one there afterwards.
    storage = os.path.join(tempfile.gettempdir(), f"ckptlens-hypothesis-{os.getuid()}")
    hypothesis.configuration.set_hypothesis_home_dir(storage)
    import transformers  # noqa: F401  (the peer the laws compare against; the [laws] extra)

    from ckptlens import formats, laws
    from ckptlens.lenses.errors import ArgumentError, Violation

    unknown = [law for law in args.laws or () if law not in laws.LAWS]
    if unknown:
        expected = f"law names: {', '.join(laws.LAWS)}"
        raise ArgumentError([Violation("--laws", expected, ", ".join(unknown), "check")])
    names = formats.names() if args.format == "all" else (formats.get(args.format).name,)
    failed = False
    for name in names:
        report = laws.check(formats.get(name), laws=args.laws or laws.LAWS, profile=args.profile)
        print(report)
        failed = failed or not report.ok
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from ckptlens.demo import main as demo

    return demo(["--out", args.out] if args.out else [])


def _width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def build_parser() -> argparse.ArgumentParser:
    from ckptlens.laws.profiles import PROFILE_NAMES
    from ckptlens.verify import add_verify_parser
    from ckptlens.weights.cli import add_convert_parser

    parser = argparse.ArgumentParser(
        prog="ckptlens", description="Lawful lenses between HF checkpoints and a native layout."
    )
    parser.add_argument("--version", action="version", version=f"ckptlens {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(commands)

    describe = commands.add_parser("describe", help="print a format's mapping table")
    describe.add_argument("format", help="a format name (see `ckptlens describe --help`)")
    describe.set_defaults(handler=_describe)

    explain = commands.add_parser(
        "explain", help="read a config.json and show each view field with where it came from"
    )
    explain.add_argument("config", help="a config.json (HF or native), or a checkpoint folder")
    explain.add_argument("--format", default=None, help="skip detection and use this format")
    explain.set_defaults(handler=_explain)

    check = commands.add_parser("check", help="run the law suite on a format (extra [laws])")
    check.add_argument("format", help="a format name, or 'all'")
    check.add_argument("--profile", choices=PROFILE_NAMES, default=None)
    check.add_argument("--laws", nargs="*", default=None, help="only these laws (default: all)")
    check.set_defaults(handler=_check)

    add_verify_parser(commands)

    demo = commands.add_parser(
        "demo", help="convert a tiny built-in Llama checkpoint HF -> native -> HF"
    )
    demo.add_argument("--out", default=None, help="keep the checkpoints in this new directory")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(f"ckptlens {__version__}")  # without building the parser (which loads formats)
        return 0
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (LensError, OSError) as error:
        if isinstance(error, BrokenPipeError):
            return _quiet_broken_pipe()
        print(f"ckptlens {args.command}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        root = (error.name or "").partition(".")[0]
        if root not in EXTRAS:
            raise
        extra = COMMAND_EXTRAS.get(args.command, EXTRAS[root])
        print(
            f"ckptlens {args.command}: needs {root}, which is not installed; "
            f"install it with: pip install 'ckptlens[{extra}]'",
            file=sys.stderr,
        )
        return 2


def _quiet_broken_pipe() -> int:
    """The reader went away (``ckptlens describe llama | head``): stop quietly, and keep
    Python from complaining when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
