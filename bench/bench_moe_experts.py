"""Benchmark: convert a synthetic DeepSeek-V3-shaped checkpoint with 256 routed experts per
MoE layer (one tensor per expert, as published) to native, and report the child's peak RSS
against the plan's memory bound, next to the same model with 8 experts (same run).

Usage: ``python bench/bench_moe_experts.py [--hidden 256] [--expert-width 128] [--layers 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.bench_convert import CKPTLENS_CHILD  # noqa: E402


def config(hidden: int, width: int, layers: int, experts: int) -> dict:
    heads = max(1, hidden // 64)
    return {
        "model_type": "deepseek_v3",
        "architectures": ["DeepseekV3ForCausalLM"],
        "vocab_size": 1024,
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "moe_intermediate_size": width,
        "num_hidden_layers": layers,
        "first_k_dense_replace": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "q_lora_rank": hidden // 2,
        "kv_lora_rank": hidden // 4,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "v_head_dim": 32,
        "n_routed_experts": experts,
        "n_group": 8 if experts >= 16 else 1,
        "topk_group": 4 if experts >= 16 else 1,
        "num_experts_per_tok": 8,
        "n_shared_experts": 1,
    }


def build(directory: str, document: dict) -> None:
    """Random float16 tensors with the names and shapes ``save_pretrained`` writes."""
    import numpy as np

    from ckptlens import formats

    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(document, handle)
    fmt = formats.get("deepseek_v3")
    model = fmt.lens.get(document)
    lens = fmt.weights(model)
    rng = np.random.default_rng(0)
    native_shapes = dict(model.tensors())
    shard: dict = {}
    index, weight_map = 0, {}
    for mapping in lens.mappings:
        shapes = mapping.op.inverse().output_shapes([native_shapes[n] for n in mapping.native])
        for name, shape in zip(mapping.external, shapes, strict=True):
            shard[name] = rng.standard_normal(shape, dtype=np.float32).astype(np.float16)
        if sum(t.nbytes for t in shard.values()) > 200 * 1024**2:
            index = _save(directory, shard, index, weight_map)
            shard = {}
    _save(directory, shard, index, weight_map)
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as handle:
        json.dump({"metadata": {}, "weight_map": weight_map}, handle)


def _save(directory: str, shard: dict, index: int, weight_map: dict) -> int:
    from safetensors.numpy import save_file

    name = f"model-{index:05d}.safetensors"
    save_file(shard, os.path.join(directory, name), metadata={"format": "pt"})
    weight_map.update(dict.fromkeys(shard, name))
    return index + 1


def run(directory: str, output: str) -> dict:
    child = subprocess.run(
        [sys.executable, "-c", CKPTLENS_CHILD, directory, output, "native"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    if child.returncode:
        raise SystemExit(child.stderr)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--expert-width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        for experts in (8, 256):
            source = os.path.join(work, f"hf-{experts}")
            build(source, config(args.hidden, args.expert_width, args.layers, experts))
            result = run(source, os.path.join(work, f"native-{experts}"))
            above = result["peak_rss"] - result["baseline_rss"]
            print(
                f"{experts:4d} experts/layer: wrote {result['bytes'] / 2**20:8.1f} MiB in "
                f"{result['seconds']:6.2f} s; peak RSS above baseline "
                f"{above / 2**20:8.1f} MiB, plan bound {result['bound'] / 2**20:8.1f} MiB "
                f"(ratio {above / max(result['bound'], 1):.2f})"
            )


if __name__ == "__main__":
    main()
