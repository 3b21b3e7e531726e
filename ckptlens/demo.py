"""``ckptlens demo``: a tiny Llama checkpoint goes HF -> native -> HF, bit for bit.

The checkpoint is built here, deterministically and without network or transformers: the
native model is declared directly, its HF ``config.json`` is written by the llama format's
config lens, and its tensors are seeded random bf16 values in the names the weight lens gives.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    Metadata,
    Model,
    RMSNorm,
)

SEED = 20240601


def tiny_llama() -> Model:
    """Grouped-query attention (6 heads over 2), rotary, gated MLP, untied head."""
    block = Block(Attention(6, 2, 8, DefaultRotary(10000.0)), MLP(64), RMSNorm(1e-5))
    metadata = Metadata(
        context_length=256,
        bos_token_id=1,
        eos_token_id=2,
        dtype="bfloat16",
        initializer_range=0.02,
        attention_dropout=0.0,
        use_cache=True,
    )
    return Model(48, 128, FixedDecoder(block, 2), Head(RMSNorm(1e-5)), metadata=metadata)


def write_hf_checkpoint(
    directory: str, model: Model, max_shard_bytes: int = 5 * 10**9, format_name: str = "llama"
) -> None:
    """config.json from the format's config lens; seeded random bf16 tensors in its HF names,
    sharded like transformers (index file when there is more than one shard)."""
    import numpy as np

    from ckptlens import formats
    from ckptlens.weights.writer import (
        OutputFiles,
        OutputTensor,
        assign_shards,
        write_index,
        write_json,
    )

    fmt = formats.get(format_name)
    os.makedirs(directory)
    write_json(os.path.join(directory, "config.json"), fmt.lens.create(model))
    shapes = fmt.weights(model).external_shapes()
    rng = np.random.default_rng(SEED)
    groups = [[OutputTensor(name, "BF16", shape)] for name, shape in shapes.items()]
    shards = assign_shards(groups, max_shard_bytes)
    files = OutputFiles(directory, shards)
    for layout in shards:
        for tensor in layout.tensors:
            values = (rng.standard_normal(tensor.shape, dtype=np.float32) * 0.02).view(np.uint32)
            files.write(tensor.name, (values >> 16).astype(np.uint16))  # bf16: top half of f32
    files.finish()
    write_index(directory, shards)


def same_tensors(first: str, second: str) -> bool:
    """Bit-for-bit equality of two checkpoint directories' tensors."""
    import numpy as np

    from ckptlens.weights.execute import read_tensor
    from ckptlens.weights.safetensors_header import read_checkpoint

    a, b = read_checkpoint(first).tensors, read_checkpoint(second).tensors
    if a.keys() != b.keys():
        return False
    descriptors: dict[str, int] = {}
    try:
        return all(
            a[n].dtype == b[n].dtype
            and np.array_equal(read_tensor(a[n], descriptors), read_tensor(b[n], descriptors))
            for n in a
        )
    finally:
        for descriptor in descriptors.values():
            os.close(descriptor)


def run(workdir: str, kept: bool = True) -> bool:
    """Build, convert there and back, compare; a short summary of each step on stdout."""
    from ckptlens.weights.convert import convert

    hf, native, back = (os.path.join(workdir, name) for name in ("hf", "native", "hf-again"))
    write_hf_checkpoint(hf, tiny_llama())
    print(f"built a tiny Llama checkpoint: {hf}")
    for src, dst, target in ((hf, native, "native"), (native, back, "llama")):
        plan = convert(src, dst, to=target, progress=False)
        print(f"$ ckptlens convert {src} {dst} --to {target}")
        print("\n".join(plan.describe(verbose=False).splitlines()[1:3]))
    identical = same_tensors(hf, back)
    same_config = _same_file(os.path.join(hf, "config.json"), os.path.join(back, "config.json"))
    print(
        f"HF -> native -> HF: tensors bit-identical: {'yes' if identical else 'NO'}, "
        f"config.json identical: {'yes' if same_config else 'NO'}"
    )
    if kept:
        print(f"the three checkpoints are in {workdir}")
    else:
        print("(written to a temporary folder, removed now; keep them with --out DIR)")
    return identical and same_config


def _same_file(first: str, second: str) -> bool:
    with open(first, "rb") as a, open(second, "rb") as b:
        return a.read() == b.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ckptlens demo", description=__doc__)
    parser.add_argument("--out", help="keep the checkpoints in this new directory")
    args = parser.parse_args(argv)
    if args.out:
        from ckptlens.weights.destination import DestinationError

        if os.path.lexists(args.out):
            raise DestinationError(f"--out {args.out}: a directory that does not exist yet")
        os.makedirs(args.out)
        return 0 if run(args.out) else 1
    workdir = tempfile.mkdtemp(prefix="ckptlens-demo-")
    try:
        return 0 if run(workdir, kept=False) else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
