"""The command line as a first-time user meets it (issue 8): version, ``python -m``, the demo,
argument errors, ``explain``, missing extras, pipes, tables, ``check`` and ``verify``."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import ckptlens
from ckptlens.cli import main
from ckptlens.demo import tiny_llama, write_hf_checkpoint
from ckptlens.lenses.errors import ArgumentError
from ckptlens.weights import convert
from conftest import load_real_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
LLAMA = "meta-llama__Meta-Llama-3.1-8B.json"


def run(*argv: str, cwd: pathlib.Path | None = None, prelude: str = "", **kwargs):
    """``python -m ckptlens ARGV`` in a subprocess (``prelude`` runs first)."""
    code = f"{prelude}\nimport runpy, sys\nsys.argv = ['ckptlens', *{list(argv)!r}]\n"
    code += "runpy.run_module('ckptlens', run_name='__main__')"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=cwd, **kwargs
    )


def test_version_and_python_dash_m():
    done = subprocess.run(
        [sys.executable, "-m", "ckptlens", "--version"], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"ckptlens {ckptlens.__version__}"


def test_the_package_version_is_the_distribution_version():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{ckptlens.__version__}"' in text


def test_demo_keeps_its_output_where_the_user_asks_and_prints_a_short_summary(tmp_path, capsys):
    """``--out`` was advertised by the demo and refused by the CLI; the plan ran 50 lines."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["hf", "hf-again", "native"]
    assert len(printed.splitlines()) <= 10
    assert "tensors bit-identical: yes, config.json identical: yes" in printed
    assert f"the three checkpoints are in {out}" in printed
    assert main(["demo", "--out", str(out)]) == 2  # never into an existing directory


def test_demo_without_out_says_its_folder_is_gone(capsys):
    assert main(["demo"]) == 0
    assert "removed now; keep them with --out DIR" in capsys.readouterr().out


def test_a_typo_in_to_lists_native_and_is_an_argument_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path), str(tmp_path / "x"), "--to", "lama"]) == 2
    err = capsys.readouterr().err
    assert "1 argument violation" in err and "'native'" in err
    assert "source violation" not in err


def test_dtype_help_lists_what_is_accepted_and_int8_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("bfloat16", "float16", "float32", "float64", "fp16"):
        assert name in help_text
    argv = ["convert", str(tmp_path), str(tmp_path / "x"), "--to", "native", "--dtype", "int8"]
    assert main(argv) == 2
    assert "argument violation" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        "not json {",
        "[" * 100_000 + "]" * 100_000,
        '{"model_type": "llama", "rope_theta": ' + "9" * 5000 + "}",
        json.dumps(
            {**load_real_config("meta-llama__Meta-Llama-3.1-8B.json"), "rope_theta": 10**400}
        ),
        json.dumps(
            {**load_real_config("meta-llama__Meta-Llama-3.1-8B.json"), "num_hidden_layers": 10**21}
        ),
        "[1, 2]",
    ],
    ids=["not-json", "deep", "5000-digits", "401-digits", "huge-layers", "a-list"],
)
def test_explain_on_a_bad_config_exits_2_without_a_traceback(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    done = run("explain", str(tmp_path / "config.json"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ckptlens explain: ")


def test_explain_reads_config_json_of_a_directory_and_explains_native_configs(tmp_path, capsys):
    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama())
    assert main(["explain", str(tmp_path / "hf")]) == 0
    assert "config.json: llama" in capsys.readouterr().out
    convert(tmp_path / "hf", tmp_path / "native", to="native", progress=False)
    assert main(["explain", str(tmp_path / "native")]) == 0
    out = capsys.readouterr().out
    assert "ckptlens-native (a native checkpoint config)" in out
    assert "decoder.block.mixer.heads [attention]" in out
    assert "the llama config.json it was converted from" in out


BLOCK_EXTRAS = textwrap.dedent(
    """
    import sys
    BLOCKED = {"torch", "transformers", "hypothesis", "safetensors"}
    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, NotInstalled())
    """
)


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["check", "llama"], "laws"),
        (["verify", "a", "b"], "verify"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_and_exits_2(argv, extra):
    done = run(*argv, prelude=BLOCK_EXTRAS)
    assert done.returncode == 2, done.stderr
    assert f"pip install 'ckptlens[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dtype_cast_without_torch_names_the_extra_and_writes_nothing(tmp_path):
    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama())
    target = tmp_path / "out"
    done = run("convert", str(tmp_path / "hf"), str(target), "--to", "native", "--dtype",
               "float32", prelude=BLOCK_EXTRAS)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'ckptlens[torch]'" in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["hf"]


def test_convert_describe_explain_and_demo_need_no_extra(tmp_path):
    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama())
    for argv in (
        ["--help"],
        ["describe", "llama"],
        ["explain", str(tmp_path / "hf")],
        ["convert", str(tmp_path / "hf"), str(tmp_path / "native"), "--to", "native"],
        ["demo"],
    ):
        done = run(*argv, prelude=BLOCK_EXTRAS)
        assert done.returncode == 0, (argv, done.stderr)


def test_importing_ckptlens_imports_no_optional_dependency():
    code = (
        "import sys, ckptlens, ckptlens.formats, ckptlens.weights, ckptlens.laws, "
        "ckptlens.laws.plugin, ckptlens.cli\n"
        "print(sorted({'torch', 'transformers', 'hypothesis', 'safetensors'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert done.stdout.strip() == "[]"


def test_piping_describe_into_head_exits_quietly():
    code = "import runpy, sys; sys.argv = ['ckptlens', 'describe', 'llama']; "
    code += "runpy.run_module('ckptlens', run_name='__main__')"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # what ``head -1`` does
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""


def test_tables_fit_an_80_column_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("llama", "qwen2", "mixtral"):
        assert main(["describe", name]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert max(len(line) for line in lines) <= 80
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["describe", "llama"]) == 0
    assert "view " in capsys.readouterr().out.splitlines()[1]  # wide enough: aligned columns


def test_check_writes_no_hypothesis_folder_into_the_working_directory(tmp_path):
    done = run("check", "mistral", "--laws", "get_put", "--profile", "dev", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pass  get_put" in done.stdout
    assert os.listdir(tmp_path) == []


def test_check_never_reports_a_law_as_passing_on_zero_examples(monkeypatch):
    from hypothesis import reject

    from ckptlens import laws
    from ckptlens.laws import checks
    from ckptlens.lenses import Int, field, record

    monkeypatch.setitem(checks.LAW_PROPERTIES, "get_put", lambda target: lambda ex: reject())
    report = laws.check(record(field("n", "n", Int())), laws=["get_put"], profile="dev")
    result = report.results[0]
    assert not result.passed and result.examples == 0
    assert "no example" in str(report)


def test_verify_with_its_arguments_swapped_says_so(tmp_path):
    from ckptlens.verify import verify

    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama())
    convert(tmp_path / "hf", tmp_path / "native", to="native", progress=False)
    with pytest.raises(ArgumentError, match="swapped") as caught:
        verify(tmp_path / "native", tmp_path / "hf")
    assert f"ckptlens verify {tmp_path / 'hf'} {tmp_path / 'native'}" in str(caught.value)


def test_verify_states_the_tolerance_rule_it_applies():
    from ckptlens.verify import VerifyReport

    report = VerifyReport(2e-5, 1e-4, 12.5, True, (2e-5,), 0, 2, 64, 0)
    assert "allowed 1.250e-03 = tolerance 0.0001 x max(1, largest |logit| 12.5)" in (
        report.summary()
    )


def test_venv_is_ignored_and_the_readme_sends_no_one_to_a_missing_folder():
    assert ".venv/" in (ROOT / ".gitignore").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    assert "shared folder" not in readme
