"""The ``ckptlens`` command: every subcommand is wired and answers as documented."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ckptlens import formats
from ckptlens.cli import main
from conftest import OWN_REAL_CONFIGS


@pytest.mark.parametrize("name", formats.names())
def test_describe_prints_the_mapping_table(name: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["describe", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: model_type {formats.get(name).model_type!r}")
    assert "num_hidden_layers" in out and "hidden_size" in out


def test_describe_an_unknown_format_names_the_supported_ones(capsys: pytest.CaptureFixture) -> None:
    assert main(["describe", "gemma2"]) == 2
    err = capsys.readouterr().err
    assert "gemma2" in err and "llama" in err and "mixtral" in err


def test_explain_detects_and_shows_values(capsys: pytest.CaptureFixture) -> None:
    config = OWN_REAL_CONFIGS / "mistralai__Mistral-7B-v0.1.json"
    assert main(["explain", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(": mistral")
    assert "sliding_window" in out and "4096" in out


def test_explain_an_unsupported_config_fails_cleanly(capsys: pytest.CaptureFixture) -> None:
    assert main(["explain", str(OWN_REAL_CONFIGS / "google__gemma-2-2b.json")]) == 2
    assert "gemma2" in capsys.readouterr().err


def test_check_runs_the_laws(capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "mistral", "--profile", "dev", "--laws", "get_put", "coverage"]) == 0
    out = capsys.readouterr().out
    assert "laws for mistral: all pass" in out and "coverage" in out


def test_the_console_script_runs_without_torch_for_describe(tmp_path) -> None:
    code = (
        "import sys; from ckptlens.cli import main; rc = main(['describe', 'llama']);"
        "print(json.dumps(['torch' in sys.modules, 'transformers' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == [False, False]


def test_demo_round_trips_bit_identically(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ckptlens.cli", "demo"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "HF -> native -> HF: tensors bit-identical: yes, config.json identical: yes" in (
        result.stdout
    )
