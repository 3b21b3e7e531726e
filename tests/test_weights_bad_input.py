"""Every bad input is a LensError naming the problem, raised before writing, leaving nothing."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file, save_file

from ckptlens.lenses.errors import ArgumentError, LensError, SourceError
from ckptlens.weights import DestinationError, convert
from ckptlens.weights.safetensors_header import read_checkpoint, read_header
from test_weights_support import build_model, save

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine")
    model = build_model("llama", tie_word_embeddings=True)
    sharded = save(model, str(root / "sharded"), max_shard_size="20KB")
    single = save(model, str(root / "single"))
    return {"single": single, "sharded": sharded}


@pytest.fixture
def checkpoint(pristine, tmp_path):
    """A fresh copy of the single-file checkpoint, to damage."""
    return shutil.copytree(pristine["single"], tmp_path / "src")


def convert_fails(src, tmp_path, error=SourceError, **kwargs) -> LensError:
    """Run convert expecting ``error``; check that nothing was left next to the destination."""
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error) as caught:
        convert(src, tmp_path / "dst", to=kwargs.pop("to", "native"), progress=False, **kwargs)
    assert sorted(os.listdir(tmp_path)) == before
    assert all(str(v) for v in caught.value.violations)
    return caught.value


def rewrite_header(path, edit) -> None:
    """Apply ``edit`` to the JSON header of a safetensors file, keeping the data bytes."""
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(length))
        data = handle.read()
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text + data)


def paths(error: LensError) -> list[str]:
    return [v.path for v in error.violations]


def test_truncated_file(checkpoint, tmp_path):
    path = checkpoint / "model.safetensors"
    os.truncate(path, os.path.getsize(path) - 3)
    error = convert_fails(checkpoint, tmp_path)
    assert "truncated" in str(error)
    assert paths(error) == ["model.safetensors"]


def test_header_whose_offsets_lie(checkpoint, tmp_path):
    def lie(header):
        entry = header["model.norm.weight"]
        entry["data_offsets"] = [entry["data_offsets"][0] + 8, entry["data_offsets"][1] + 8]

    rewrite_header(checkpoint / "model.safetensors", lie)
    error = convert_fails(checkpoint, tmp_path)
    assert "model.safetensors:model.norm.weight.data_offsets" in paths(error)


def test_header_size_that_disagrees_with_shape(checkpoint, tmp_path):
    def lie(header):
        header["model.norm.weight"]["shape"] = [3]

    rewrite_header(checkpoint / "model.safetensors", lie)
    error = convert_fails(checkpoint, tmp_path)
    assert "model.safetensors:model.norm.weight.data_offsets" in paths(error)
    assert "F32 x [3]" in str(error)


def test_unknown_dtype_and_garbage_header(checkpoint, tmp_path):
    rewrite_header(
        checkpoint / "model.safetensors", lambda h: h["model.norm.weight"].update(dtype="Q7")
    )
    assert "model.safetensors:model.norm.weight.dtype" in paths(convert_fails(checkpoint, tmp_path))
    with open(checkpoint / "model.safetensors", "r+b") as handle:
        handle.write(struct.pack("<Q", 2**40))
    assert "header length" in str(convert_fails(checkpoint, tmp_path))


def test_index_naming_a_missing_shard(pristine, tmp_path):
    src = shutil.copytree(pristine["sharded"], tmp_path / "src")
    index = json.loads((src / "model.safetensors.index.json").read_text())
    last = sorted(set(index["weight_map"].values()))[-1]
    os.remove(src / last)
    error = convert_fails(src, tmp_path)
    assert f"missing shard {last!r}" in str(error)


def test_index_disagreeing_with_shards(pristine, tmp_path):
    src = shutil.copytree(pristine["sharded"], tmp_path / "src")
    index_path = src / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    moved = "model.norm.weight"
    index["weight_map"][moved] = next(
        v for v in index["weight_map"].values() if v != index["weight_map"][moved]
    )
    del index["weight_map"]["model.embed_tokens.weight"]
    index_path.write_text(json.dumps(index))
    error = convert_fails(src, tmp_path)
    assert {moved, "model.embed_tokens.weight"} <= set(paths(error))


def test_extra_unknown_tensor_and_wrong_shape_reported_together(checkpoint, tmp_path):
    import torch

    path = str(checkpoint / "model.safetensors")
    tensors = load_file(path)
    tensors["model.layers.0.mlp.extra.weight"] = torch.zeros(2, 2)
    tensors["model.layers.1.mlp.down_proj.weight"] = torch.zeros(3, 3)
    save_file(tensors, path, metadata={"format": "pt"})
    error = convert_fails(checkpoint, tmp_path)
    assert "unknown tensor" in str(error)
    assert set(paths(error)) == {
        "model.layers.0.mlp.extra.weight",
        "model.layers.1.mlp.down_proj.weight",
    }


def test_config_that_disagrees_with_tensors(checkpoint, tmp_path):
    config_path = checkpoint / "config.json"
    config = json.loads(config_path.read_text())
    config["intermediate_size"] += 1
    config["num_hidden_layers"] += 1
    config_path.write_text(json.dumps(config))
    error = convert_fails(checkpoint, tmp_path)
    assert "model.layers.0.mlp.up_proj.weight" in paths(error)
    assert "model.layers.2.self_attn.q_proj.weight" in paths(error)
    assert "missing" in str(error)


def test_config_dtype_that_disagrees_with_the_tensors(checkpoint, tmp_path):
    config = json.loads((checkpoint / "config.json").read_text())
    stored = "F32" if config.get("dtype") == "float32" else None
    assert stored, "the fixture stores float32 weights"
    config["dtype"] = "bfloat16"
    (checkpoint / "config.json").write_text(json.dumps(config))
    error = convert_fails(checkpoint, tmp_path)
    assert any(
        v.path == "config.json $.dtype" and "BF16" in v.expected and v.found.startswith("F32 in ")
        for v in error.violations
    )


def test_destination_that_exists(checkpoint, tmp_path):
    (tmp_path / "dst").mkdir()
    error = convert_fails(checkpoint, tmp_path, error=DestinationError)
    assert "it exists" in str(error)


def test_pickle_checkpoints_are_refused(checkpoint, tmp_path):
    os.remove(checkpoint / "model.safetensors")
    (checkpoint / "pytorch_model.bin").write_bytes(b"not unpickled")
    error = convert_fails(checkpoint, tmp_path)
    assert "pickle" in str(error)


def test_unknown_target_format(checkpoint, tmp_path):
    error = convert_fails(checkpoint, tmp_path, error=ArgumentError, to="gpt-17")
    assert "'native'" in str(error) and "'llama'" in str(error)


def test_inputs_are_never_modified(pristine, tmp_path):
    src = pristine["sharded"]
    snapshot = {n: (pathlib.Path(src) / n).read_bytes() for n in os.listdir(src)}
    convert(src, tmp_path / "native", to="native", progress=False)
    assert {n: (pathlib.Path(src) / n).read_bytes() for n in os.listdir(src)} == snapshot


def test_reader_tolerates_nothing_silently(checkpoint):
    infos, problems = read_header(str(checkpoint / "model.safetensors"))
    assert problems == []
    assert len(infos) == len(read_checkpoint(str(checkpoint)).tensors)


SLOW_CONVERT = textwrap.dedent(
    """
    import sys, time
    from ckptlens.weights import writer
    from ckptlens.weights.convert import convert

    original = writer.OutputFiles.copy

    def slow_copy(self, *args):
        print("writing", flush=True)
        time.sleep(0.05)
        return original(self, *args)

    writer.OutputFiles.copy = slow_copy
    convert(sys.argv[1], sys.argv[2], to="native", progress=False)
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_conversion_killed_midway_leaves_no_destination(pristine, tmp_path, signum):
    dst = tmp_path / "dst"
    if signum == signal.SIGTERM:
        # the CLI's handler: SIGTERM unwinds and removes the staging directory too
        script = "from ckptlens.weights.cli import _terminate_cleanly; _terminate_cleanly()\n"
    else:
        script = ""
    command = [sys.executable, "-c", script + SLOW_CONVERT, pristine["sharded"], str(dst)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signum)
    process.wait(timeout=30)
    assert process.returncode != 0
    assert not dst.exists()
    if signum == signal.SIGTERM:
        assert os.listdir(tmp_path) == []
    convert(pristine["sharded"], dst, to="native", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["dst"]


def add_lm_head(checkpoint, perturb: bool) -> None:
    """A tied checkpoint that stores the output projection anyway (some exporters do)."""
    path = str(checkpoint / "model.safetensors")
    tensors = load_file(path)
    head = tensors["model.embed_tokens.weight"].clone()
    if perturb:
        head[3, 5] += 1
    tensors["lm_head.weight"] = head
    save_file(tensors, path, metadata={"format": "pt"})


def test_tied_checkpoint_with_equal_output_copy_is_read_once(checkpoint, tmp_path):
    add_lm_head(checkpoint, perturb=False)
    plan = convert(checkpoint, tmp_path / "native", to="native", progress=False)
    assert "Tie(count=2)" in plan.describe()
    back = tmp_path / "back"
    convert(tmp_path / "native", back, to="llama", progress=False)
    assert "lm_head.weight" not in load_file(str(back / "model.safetensors"))


def test_tied_checkpoint_with_different_output_copy(checkpoint, tmp_path):
    add_lm_head(checkpoint, perturb=True)
    error = convert_fails(checkpoint, tmp_path)
    assert "model.embed_tokens.weight, lm_head.weight" in paths(error)
    assert "differ" in str(error)


def test_destination_inside_the_source_is_refused(checkpoint):
    """A later conversion of the source would nest the old output inside the new one."""
    before = sorted(os.listdir(checkpoint))
    with pytest.raises(DestinationError, match="outside the source"):
        convert(checkpoint, checkpoint / "native", to="native", progress=False)
    with pytest.raises(DestinationError, match="contain the source"):
        convert(checkpoint, checkpoint.parent, to="native", progress=False, overwrite=True)
    assert sorted(os.listdir(checkpoint)) == before
