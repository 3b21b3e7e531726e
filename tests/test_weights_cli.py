"""The ``convert`` subcommand: plan printing, progress on stderr, exit codes."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from ckptlens.demo import tiny_llama, write_hf_checkpoint
from ckptlens.weights.cli import add_convert_parser, main


@pytest.fixture
def source(tmp_path):
    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama(), 30_000)
    (tmp_path / "hf" / "tokenizer.json").write_text("{}")
    return tmp_path / "hf"


def test_plan_prints_and_writes_nothing(source, tmp_path, capsys):
    assert main(["convert", str(source), str(tmp_path / "out"), "--to", "native", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "plan: hf llama -> native" in out
    assert "RotaryPermute(heads=6, head_size=8, to_interleaved=True)" in out
    assert "peak tensor memory <=" in out
    assert "(kernel copy)" in out
    assert not (tmp_path / "out").exists()


def test_convert_shows_progress_and_copies_other_files(source, tmp_path, capsys):
    target = tmp_path / "out"
    argv = ["convert", str(source), str(target), "--to", "native", "--max-shard-size", "20KB"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "(100.0%)" in captured.err
    assert "/s" in captured.err
    assert (target / "tokenizer.json").read_text() == "{}"
    assert (target / "model.safetensors.index.json").exists()
    assert (target / "model-00001-of-00003.safetensors").exists() or len(
        list(target.glob("model-*"))
    ) > 1


def test_rejected_input_exits_2_with_every_problem(source, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["convert", str(source), str(tmp_path / "taken"), "--to", "native"]) == 2
    assert "it exists" in capsys.readouterr().err
    assert (
        main(["convert", str(source), str(tmp_path / "x"), "--to", "native", "--dtype", "int3"])
        == 2
    )
    assert "--dtype" in capsys.readouterr().err


def test_parser_plugs_into_a_host_cli():
    parser = argparse.ArgumentParser(prog="host")
    add_convert_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", "a", "b", "--to", "mistral", "--moe-layout", "fused"])
    assert (args.src, args.dst, args.to, args.moe_layout, args.plan) == (
        "a",
        "b",
        "mistral",
        "fused",
        False,
    )
    assert callable(args.handler)


def test_importing_the_package_imports_no_torch():
    import subprocess

    code = (
        "import sys, ckptlens.weights, ckptlens.weights.cli; "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_generation_v4_spells_the_new_config_for_transformers_v4(source, tmp_path):
    native, hf = tmp_path / "native", tmp_path / "hf-v4"
    assert main(["convert", str(source), str(native), "--to", "native", "--quiet"]) == 0
    argv = ["convert", str(native), str(hf), "--to", "llama", "--generation", "v4", "--quiet"]
    assert main(argv) == 0
    config = json.loads((hf / "config.json").read_text())
    assert "rope_theta" in config and "rope_parameters" not in config
    assert "torch_dtype" in config and "dtype" not in config
