"""``convert``: a checkpoint directory to another layout, planned in full, then streamed.

The source is an HF checkpoint (its format detected from ``config.json``) or a native one;
the target is ``"native"`` or a format name. Everything is written into a temporary sibling
directory and renamed into place only when complete, so the destination either does not exist
or is a whole checkpoint (``overwrite`` swaps a complete new one in for an existing one).
Inputs are never modified.

A native checkpoint made from an HF one keeps that HF ``config.json`` (``hf_source`` in its
own config), so converting it back into the same format is a ``put`` against it: the file comes
back exactly, unless the view changed. Any other target gets a fresh ``create``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
from typing import Any

import attrs

from ckptlens.dtypes import BY_CODE, FLOAT_CODE_BY_SPELLING
from ckptlens.files import read_json_object
from ckptlens.lenses.errors import (
    ArgumentError,
    SourceError,
    ViewError,
    Violation,
    quote,
)
from ckptlens.lenses.paths import ABSENT, same
from ckptlens.native.checkpoint import (
    CONFIG_FILE,
    FORMAT_NAME,
    hf_source_of,
    model_from_native_config,
    native_config_dict,
)
from ckptlens.native.config import Model
from ckptlens.weights.auxiliary import Auxiliary, copy_auxiliary, select
from ckptlens.weights.destination import (
    STAGING,
    check_destination,
    check_source_and_destination,
    make_parents,
    move_into_place,
    remove_stale_temporaries,
    sync_directory,
    temporary_sibling,
)
from ckptlens.weights.lens import WeightLens, native_weights
from ckptlens.weights.plan import Plan, build_plan
from ckptlens.weights.safetensors_header import (
    INDEX_FILE,
    SINGLE_FILE,
    Checkpoint,
    read_checkpoint,
)
from ckptlens.weights.writer import write_index, write_json

NATIVE = "native"
MOE_LAYOUTS = ("per_expert", "fused")
GENERATIONS = ("v5", "v4")
DTYPE_HELP = "bfloat16, float16, float32, float64 (or bf16, fp16, half, fp32, float, fp64)"
UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


@attrs.frozen
class Side:
    """One end of a conversion: its layout's weight lens and its config document. ``hf_source``
    is the HF format and config a checkpoint came from (its own, for an HF checkpoint);
    ``how`` says how the config document was made."""

    name: str
    lens: WeightLens
    config: dict[str, Any]
    hf_source: tuple[str, dict[str, Any]] | None = None
    how: str = ""


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    to: str,
    dtype: str | None = None,
    max_shard_size: int | str = "5GB",
    plan_only: bool = False,
    progress: bool = True,
    moe_layout: str | None = None,
    generation: str | None = None,
    overwrite: bool = False,
) -> Plan:
    """Convert the checkpoint in ``src`` to layout ``to`` in ``dst``; returns the plan.

    ``to`` is ``"native"`` or a format name; ``dtype`` casts floating tensors; ``moe_layout``
    (``"per_expert"`` or ``"fused"``) picks the HF expert layout written, by default the
    source's; ``generation`` (``"v5"`` or ``"v4"``) spells a freshly created HF config for that
    transformers generation (default v5); a config put against its HF source keeps the
    source's spelling, so asking for the other one there is refused. With ``plan_only``
    nothing is read beyond headers and nothing is written. Missing parent directories of
    ``dst`` are created; an existing ``dst`` is replaced only with ``overwrite``, and only once
    the new checkpoint is complete.
    """
    src, dst = _paths(src, dst)
    _check_arguments(to, moe_layout, generation)
    code = _dtype_code(dtype)
    max_bytes = parse_size(max_shard_size)
    check_source_and_destination(src, dst, plan_only, overwrite)
    document = read_json_object(os.path.join(src, CONFIG_FILE), "a JSON config")
    checkpoint = read_checkpoint(src)
    source, detected = _source_side(document, checkpoint)
    layout = moe_layout or detected.get("moe_layout")
    target = _target_side(source, to, code, layout, generation)
    return convert_between(
        src,
        dst,
        source,
        target,
        dtype=code,
        max_shard_size=max_bytes,
        plan_only=plan_only,
        progress=progress,
        checkpoint=checkpoint,
        overwrite=overwrite,
    )


def _paths(src: Any, dst: Any) -> tuple[str, str]:
    src, dst = os.fspath(src), os.fspath(dst)
    for name, path in (("src", src), ("dst", dst)):
        if not path:
            raise ArgumentError([Violation(name, "a directory path", "an empty path", "convert")])
    return src, dst


def _check_arguments(to: Any, moe_layout: Any, generation: Any) -> None:
    from ckptlens import formats

    targets = [NATIVE, *formats.names()]
    problems = []
    if to not in targets:
        problems.append(Violation("--to", f"one of {targets}", quote(to), "convert"))
    if moe_layout not in (None, *MOE_LAYOUTS):
        problems.append(
            Violation("--moe-layout", f"one of {list(MOE_LAYOUTS)}", quote(moe_layout), "convert")
        )
    if generation not in (None, *GENERATIONS):
        problems.append(
            Violation("--generation", f"one of {list(GENERATIONS)}", quote(generation), "convert")
        )
    if problems:
        raise ArgumentError(problems)


def _check_counts(model: Model, checkpoint: Checkpoint) -> None:
    """Every block has tensors, so a config stating more blocks than the checkpoint has
    tensors is wrong; checked before anything is built per block."""
    blocks = model.decoder.num_blocks + model.head.prediction_heads - 1
    if blocks > len(checkpoint.tensors):
        raise SourceError(
            [
                Violation(
                    "config.json $.decoder.num_blocks",
                    f"at most {len(checkpoint.tensors)} blocks (the tensors in the checkpoint; "
                    "every block has some)",
                    str(model.decoder.num_blocks),
                    "convert",
                )
            ]
        )


def convert_between(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    source: Side,
    target: Side,
    *,
    dtype: str | None = None,
    max_shard_size: int | str = "5GB",
    plan_only: bool = False,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
    overwrite: bool = False,
) -> Plan:
    """Convert with both sides given (weight lenses and the target config document);
    ``dtype`` is a safetensors dtype code (``"BF16"``), ``checkpoint`` the headers if read."""
    src, dst = _paths(src, dst)
    check_source_and_destination(src, dst, plan_only, overwrite)
    _refuse_quantized(source)
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(src)
    max_bytes = parse_size(max_shard_size)
    plan = build_plan(checkpoint, source.lens, target.lens, dtype=dtype, max_shard_bytes=max_bytes)
    keep_code = target.name in (NATIVE, source.name)
    auxiliary = select(src, _consumed(checkpoint), keep_remote_code=keep_code, skip=_staged(src))
    notes = ([f"config.json: {target.how}"] if target.how else []) + auxiliary.describe()
    plan = attrs.evolve(plan, notes=notes)
    if not plan_only:
        if dtype is not None and importlib.util.find_spec("torch") is None:
            # casts run in torch; say so before anything is written, not halfway through
            raise ModuleNotFoundError("--dtype casts need torch", name="torch")
        _write(plan, checkpoint, target.config, dst, progress, auxiliary, overwrite)
    return plan


def _refuse_quantized(source: Side) -> None:
    """A quantized checkpoint (FP8 weights with their scales) is refused before any plan: its
    weights are not the tensors the model's lens describes, and converting them is not built
    yet (FP8 block weights are the sparse formats' work)."""
    quantization = source.lens.model.metadata.quantization
    if quantization is not None:
        method = quantization.get("quant_method") if isinstance(quantization, dict) else None
        raise SourceError(
            [
                Violation(
                    "$.quantization_config",
                    "an unquantized checkpoint: converting FP8 (or other quantized) weights "
                    "is not supported yet",
                    f"quant_method {method!r}",
                    "convert",
                )
            ]
        )


def _consumed(checkpoint: Checkpoint) -> set[str]:
    return {SINGLE_FILE, INDEX_FILE, CONFIG_FILE, *(os.path.basename(f) for f in checkpoint.files)}


def _source_side(document: dict[str, Any], checkpoint: Checkpoint) -> tuple[Side, dict[str, Any]]:
    """The source side, and the weight options its tensor names reveal (the format's own
    declaration knows its expert layouts and output name; a native source reveals none)."""
    if document.get("format") == FORMAT_NAME:
        model = model_from_native_config(document)
        _check_counts(model, checkpoint)
        side = Side(NATIVE, native_weights(model), document, hf_source_of(document))
        return side, {}
    from ckptlens import formats

    fmt = formats.detect(document)
    model = fmt.lens.get(document)
    _check_counts(model, checkpoint)
    options = fmt.weight_options(checkpoint.tensors)
    side = Side(fmt.name, fmt.weights(model, **options), document, (fmt.name, document))
    return side, options


def _target_side(
    source: Side, to: str, code: str | None, layout: str | None, generation: str | None = None
) -> Side:
    model = _with_dtype(source.lens.model, code)
    if to == NATIVE:
        if source.hf_source is None:
            how = "native, no HF source recorded (the source had none)"
        else:
            how = f"native, keeping the {source.hf_source[0]} config.json it came from"
        config = native_config_dict(model, source.hf_source)
        return Side(NATIVE, native_weights(model), config, source.hf_source, how)
    from ckptlens import formats

    fmt = formats.get(to)
    try:
        config, how = _hf_config(fmt, model, source, generation)
    except ViewError as error:
        context = f"{source.name} -> {fmt.name}: the {fmt.name} format cannot hold this model"
        raise ViewError(error.violations, context=context) from None
    options = {} if layout is None else {"moe_layout": layout}
    return Side(fmt.name, fmt.weights(model, **options), config, (fmt.name, config), how)


def _hf_config(
    fmt: Any, model: Model, source: Side, generation: str | None
) -> tuple[dict[str, Any], str]:
    """``put`` against the HF config the checkpoint came from when it is this format (its
    presentation, extra keys and spelling kept), ``create`` otherwise, or when ``generation``
    asks for the other transformers spelling than that config's (honoured, never ignored)."""
    fresh = f"created for {fmt.name} (transformers {generation or 'v5'} spelling)"
    if source.hf_source is None or source.hf_source[0] != fmt.name:
        return fmt.lens.create(model, generation=generation or "v5"), fresh
    original = source.hf_source[1]
    config = fmt.lens.put(model, original)
    foreign = _foreign_spelling(fmt, model, config, generation) if generation else []
    if foreign:
        return fmt.lens.create(model, generation=generation), (
            f"{fresh}, as --generation asks: the {fmt.name} config.json it came from is spelled "
            f"for the other generation ({', '.join(foreign)}); its keys outside the view are "
            "not carried over"
        )
    keys = {**original, **config}
    changed = [k for k in keys if not same(original.get(k, ABSENT), config.get(k, ABSENT))]
    if not changed:
        return config, f"put against the {fmt.name} config.json it came from: given back exactly"
    return config, (
        f"put against the {fmt.name} config.json it came from; the view changed "
        f"{', '.join(changed)}"
    )


def _foreign_spelling(fmt: Any, model: Model, config: dict[str, Any], generation: str) -> list[str]:
    """Keys of ``config`` that only the other transformers generation writes."""
    wanted = set(fmt.lens.create(model, generation=generation))
    other = next(g for g in GENERATIONS if g != generation)
    return sorted((set(fmt.lens.create(model, generation=other)) - wanted) & set(config))


def _with_dtype(model: Model, code: str | None) -> Model:
    if code is None:
        return model
    return attrs.evolve(model, metadata=attrs.evolve(model.metadata, dtype=BY_CODE[code].name))


def _dtype_code(dtype: str | None) -> str | None:
    if dtype is None:
        return None
    code = FLOAT_CODE_BY_SPELLING.get(dtype.lower()) if isinstance(dtype, str) else None
    if code is None:
        raise ArgumentError(
            [Violation("--dtype", f"a floating dtype: {DTYPE_HELP}", quote(dtype), "convert")]
        )
    return code


def parse_size(size: int | str) -> int:
    """``"5GB"`` (decimal, as transformers counts) or ``"2GiB"`` or a byte count."""
    if type(size) is int and size >= 1:
        return size
    pattern = r"\s*(\d{1,15}(?:\.\d{1,15})?)\s*([KMG]i?B|B)?\s*"
    match = re.fullmatch(pattern, size, flags=re.IGNORECASE) if isinstance(size, str) else None
    if match is None or int(float(match[1]) * UNITS[(match[2] or "").upper()]) < 1:
        raise ArgumentError(
            [Violation("--max-shard-size", "a size such as 5GB or 500MiB", quote(size), "convert")]
        )
    return int(float(match[1]) * UNITS[(match[2] or "").upper()])


# ---------------------------------------------------------------- writing


def _staged(directory: str) -> set[str]:
    """Staging directories of conversions next to ``directory``'s entries (never copied)."""
    return {name for name in os.listdir(directory) if STAGING.fullmatch(name)}


def _write(
    plan: Plan,
    checkpoint: Checkpoint,
    config: dict[str, Any],
    dst: str,
    progress: bool,
    auxiliary: Auxiliary,
    overwrite: bool = False,
) -> None:
    # imported here: it loads threads and ctypes, which importing a format must not pay for
    from ckptlens.weights.execute import execute
    from ckptlens.weights.progress import ProgressLine

    created = make_parents(dst)
    remove_stale_temporaries(dst)
    staging = temporary_sibling(dst)
    os.mkdir(staging)
    try:
        reporter = ProgressLine(plan.write_bytes) if progress else None
        execute(plan, staging, reporter)
        if reporter is not None:
            reporter.finish()
        write_index(staging, plan.shards)
        write_json(os.path.join(staging, CONFIG_FILE), config)
        copy_auxiliary(checkpoint.directory, auxiliary, staging)
        check_destination(dst, overwrite)
        move_into_place(staging, dst)
        sync_directory(os.path.dirname(os.path.abspath(dst)))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # only if still empty
        raise
