"""``convert`` from issue 8: destinations, the source's other files, the HF source kept in a
native checkpoint, ``--generation``, and refusals in the user's terms."""

from __future__ import annotations

import json
import os

import pytest

from ckptlens.demo import tiny_llama, write_hf_checkpoint
from ckptlens.lenses.errors import ArgumentError, LensError, SourceError, ViewError
from ckptlens.weights import DestinationError, convert
from ckptlens.weights.cli import main
from hardening_support import tiny_view


@pytest.fixture
def hf(tmp_path):
    """A tiny HF Llama checkpoint whose config carries keys the native view does not hold."""
    path = tmp_path / "hf"
    write_hf_checkpoint(str(path), tiny_llama())
    config = json.loads((path / "config.json").read_text())
    config = {**config, "pretraining_tp": 1, "transformers_version": "4.43.0", "head_dim": None}
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "tokenizer.json").write_text("{}")
    return path


def native_of(hf, tmp_path, **options):
    native = tmp_path / "native"
    convert(hf, native, to="native", progress=False, **options)
    return native


def test_hf_to_native_to_hf_gives_config_json_back_exactly(hf, tmp_path):
    """It dropped ``pretraining_tp`` and ``transformers_version`` and rewrote ``head_dim``."""
    native = native_of(hf, tmp_path)
    document = json.loads((native / "config.json").read_text())
    assert document["hf_source"]["format"] == "llama"
    plan = convert(native, tmp_path / "back", to="llama", progress=False)
    original = json.loads((hf / "config.json").read_text())
    back = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back == original and list(back) == list(original)
    assert "config.json: put against the llama config.json it came from" in plan.describe()
    assert "given back exactly" in plan.describe()


def test_a_changed_view_is_put_and_the_plan_says_what_changed(hf, tmp_path):
    native = native_of(hf, tmp_path)
    plan = convert(native, tmp_path / "plan", to="llama", dtype="float32", plan_only=True)
    assert "the view changed dtype" in plan.describe()


def test_another_format_is_created_and_the_plan_says_so(hf, tmp_path):
    native = native_of(hf, tmp_path)
    plan = convert(native, tmp_path / "m", to="mistral", plan_only=True)
    assert "config.json: created for mistral (transformers v5 spelling)" in plan.describe()


def test_generation_v4_is_honoured_for_a_same_format_conversion(hf, tmp_path):
    """It was silently ignored: the source's v5 spelling was kept."""
    convert(hf, tmp_path / "v4", to="llama", generation="v4", progress=False)
    written = json.loads((tmp_path / "v4" / "config.json").read_text())
    assert "rope_parameters" not in written and "rope_theta" in written
    assert "torch_dtype" in written
    with pytest.raises(ArgumentError, match="--generation"):
        convert(hf, tmp_path / "v3", to="llama", generation="v3")


def test_destination_empty_string_is_an_argument_error(hf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ArgumentError, match="an empty path"):
        convert(hf, "", to="native", progress=False)
    assert sorted(os.listdir(tmp_path)) == before


def test_missing_parents_are_created(hf, tmp_path):
    target = tmp_path / "a" / "b" / "native"
    convert(hf, target, to="native", progress=False)
    assert (target / "config.json").is_file()


def test_missing_parents_are_removed_again_when_the_conversion_fails(hf, tmp_path):
    (hf / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(SourceError):
        convert(hf, tmp_path / "a" / "b" / "native", to="native", progress=False)
    assert not (tmp_path / "a").exists()


def test_a_parent_that_is_a_file_is_a_destination_error(hf, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DestinationError, match="is a file"):
        convert(hf, tmp_path / "file" / "native", to="native", progress=False)


def test_overwrite_replaces_an_existing_destination_only_when_complete(hf, tmp_path):
    target = tmp_path / "native"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(DestinationError, match="--overwrite"):
        convert(hf, target, to="native", progress=False)
    assert (target / "old.txt").exists()
    (hf / "model.safetensors").rename(hf / "saved")
    with pytest.raises(SourceError):
        convert(hf, target, to="native", progress=False, overwrite=True)
    assert (target / "old.txt").exists()  # a failed conversion leaves the old one alone
    (hf / "saved").rename(hf / "model.safetensors")
    convert(hf, target, to="native", progress=False, overwrite=True)
    assert sorted(os.listdir(target)) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_only_files_that_belong_with_a_checkpoint_are_copied(hf, tmp_path):
    """Subfolders (``original/``, ``checkpoint-100/``) and pickles were copied."""
    (hf / "original").mkdir()
    (hf / "original" / "consolidated.00.pth").write_bytes(b"pickle")
    (hf / "checkpoint-100").mkdir()
    (hf / "pytorch_model.bin").write_bytes(b"pickle")
    (hf / "consolidated.safetensors").write_bytes(b"")
    (hf / "notes.txt").write_text("mine")
    for name in ("generation_config.json", "README.md", "LICENSE", "chat_template.jinja"):
        (hf / name).write_text("x")
    plan = convert(hf, tmp_path / "native", to="native", progress=False)
    assert sorted(os.listdir(tmp_path / "native")) == [
        "LICENSE",
        "README.md",
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    text = plan.describe()
    for name in ("original", "checkpoint-100", "pytorch_model.bin", "notes.txt"):
        assert f"left behind: {name} (" in text
    assert "left behind: consolidated.safetensors (weights the index does not list" in text


def test_left_behind_files_are_in_the_plan_and_the_summary(hf, tmp_path, capsys):
    (hf / "original").mkdir()
    assert main(["convert", str(hf), str(tmp_path / "p"), "--to", "native", "--plan"]) == 0
    assert "left behind: original (a folder" in capsys.readouterr().out
    assert main(["convert", str(hf), str(tmp_path / "n"), "--to", "native", "--quiet"]) == 0
    assert "left behind: original (a folder" in capsys.readouterr().out


def test_a_symlink_loop_in_the_source_is_left_behind_or_a_lens_error(hf, tmp_path):
    os.symlink("loop", hf / "loop")
    plan = convert(hf, tmp_path / "a", to="native", progress=False)
    assert "left behind: loop" in plan.describe()
    os.symlink("tokenizer_config.json", hf / "tokenizer_config.json")  # loops onto itself
    with pytest.raises(SourceError, match=r"tokenizer_config\.json"):
        convert(hf, tmp_path / "b", to="native", progress=False)
    assert not (tmp_path / "b").exists()


def test_a_named_pipe_as_an_auxiliary_file_is_a_lens_error(hf, tmp_path):
    os.mkfifo(hf / "special_tokens_map.json")
    with pytest.raises(SourceError, match="a named pipe"):
        convert(hf, tmp_path / "native", to="native", progress=False)
    assert os.listdir(tmp_path) == ["hf"]


def test_a_destination_inside_the_source_is_refused(hf):
    with pytest.raises(DestinationError, match="outside the source"):
        convert(hf, hf / "native", to="native", progress=False)


def test_a_cross_format_refusal_names_both_formats_and_the_key_that_cannot_say_it(tmp_path):
    """qwen2 -> llama: q/k/v biases but no output bias; Llama's one key sets all of them."""
    source = tmp_path / "qwen2"
    write_hf_checkpoint(str(source), tiny_view("qwen2"), format_name="qwen2")
    with pytest.raises(ViewError) as caught:
        convert(source, tmp_path / "llama", to="llama", progress=False)
    text = str(caught.value)
    assert text.startswith("qwen2 -> llama: the llama format cannot hold this model")
    assert "single key 'attention_bias' sets all 3 of them" in text
    assert "query_bias=True, key_value_bias=True, dense_bias=False" in text
    assert "$.decoder.block.mixer.dense_bias" in text  # the path stays


def test_a_layer_count_beyond_the_tensors_on_disk_is_refused_before_planning(hf, tmp_path):
    config = json.loads((hf / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 9000}))
    with pytest.raises(SourceError, match="tensors in the checkpoint"):
        convert(hf, tmp_path / "native", to="native", progress=False)


@pytest.mark.parametrize(
    "options",
    [
        {"to": "lama"},
        {"to": "native", "dtype": "int8"},
        {"to": "native", "dtype": 16},
        {"to": "native", "max_shard_size": "five"},
        {"to": "native", "moe_layout": "stacked"},
    ],
)
def test_bad_arguments_are_argument_errors(hf, tmp_path, options):
    with pytest.raises(ArgumentError) as caught:
        convert(hf, tmp_path / "x", progress=False, **options)
    assert isinstance(caught.value, LensError)
    assert "source violation" not in str(caught.value)
