"""``convert``: a checkpoint directory to another layout, planned in full, then streamed.

The source is an HF checkpoint (its format detected from ``config.json``) or a native one;
the target is ``"native"`` or a format name. Everything is written into a temporary sibling
directory and renamed into place only when complete, so the destination either does not exist
or is a whole checkpoint. Inputs are never modified.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from typing import Any

import attrs

from ckptlens.dtypes import BY_CODE, FLOAT_CODE_BY_SPELLING
from ckptlens.lenses.errors import LensError, SourceError, Violation
from ckptlens.native.checkpoint import (
    CONFIG_FILE,
    FORMAT_NAME,
    model_from_native_config,
    native_config_dict,
)
from ckptlens.native.config import Model
from ckptlens.weights.lens import WeightLens, native_weights
from ckptlens.weights.plan import Plan, build_plan
from ckptlens.weights.safetensors_header import (
    INDEX_FILE,
    PICKLE_SUFFIXES,
    SINGLE_FILE,
    Checkpoint,
    read_checkpoint,
)
from ckptlens.weights.writer import write_index, write_json

NATIVE = "native"
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


class DestinationError(LensError):
    """The destination cannot be written (it exists, or its parent is not a directory)."""

    side = "destination"


@attrs.frozen
class Side:
    """One end of a conversion: its layout's weight lens and its config document."""

    name: str
    lens: WeightLens
    config: dict[str, Any]


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
    generation: str = "v5",
) -> Plan:
    """Convert the checkpoint in ``src`` to layout ``to`` in ``dst``; returns the plan.

    ``to`` is ``"native"`` or a format name; ``dtype`` casts floating tensors; ``moe_layout``
    (``"per_expert"`` or ``"fused"``) picks the HF expert layout written, by default the
    source's; ``generation`` (``"v5"`` or ``"v4"``) spells a freshly created HF config for that
    transformers generation. With ``plan_only`` nothing is read beyond headers and nothing is
    written.
    """
    src = os.fspath(src)
    document = _read_json(os.path.join(src, CONFIG_FILE))
    code = _dtype_code(dtype)
    checkpoint = read_checkpoint(src)
    source, detected = _source_side(document, checkpoint.tensors)
    layout = moe_layout or detected.get("moe_layout")
    target = _target_side(source, to, document, code, layout, generation)
    return convert_between(
        src,
        dst,
        source,
        target,
        dtype=code,
        max_shard_size=max_shard_size,
        plan_only=plan_only,
        progress=progress,
        checkpoint=checkpoint,
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
) -> Plan:
    """Convert with both sides given (weight lenses and the target config document);
    ``dtype`` is a safetensors dtype code (``"BF16"``), ``checkpoint`` the headers if read."""
    src, dst = os.fspath(src), os.fspath(dst)
    if not plan_only:
        _check_destination(dst)
    _refuse_quantized(source)
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(src)
    max_bytes = parse_size(max_shard_size)
    plan = build_plan(checkpoint, source.lens, target.lens, dtype=dtype, max_shard_bytes=max_bytes)
    if not plan_only:
        _write(plan, checkpoint, target.config, dst, progress)
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


def _source_side(
    document: dict[str, Any], tensor_names: Iterable[str]
) -> tuple[Side, dict[str, Any]]:
    """The source side, and the weight options its tensor names reveal (the format's own
    declaration knows its expert layouts and output name; a native source reveals none)."""
    if document.get("format") == FORMAT_NAME:
        model = model_from_native_config(document)
        return Side(NATIVE, native_weights(model), document), {}
    from ckptlens import formats

    fmt = formats.detect(document)
    model = fmt.lens.get(document)
    options = fmt.weight_options(tensor_names)
    return Side(fmt.name, fmt.weights(model, **options), document), options


def _target_side(
    source: Side,
    to: str,
    document: dict[str, Any],
    code: str | None,
    layout: str | None,
    generation: str = "v5",
) -> Side:
    model = _with_dtype(source.lens.model, code)
    if to == NATIVE:
        return Side(NATIVE, native_weights(model), native_config_dict(model))
    from ckptlens import formats

    fmt = formats.get(to)
    # the same format keeps the source's presentation (key order, spellings, extra metadata)
    if fmt.name == source.name:
        config = fmt.lens.put(model, document)
    else:
        config = fmt.lens.create(model, generation=generation)
    options = {} if layout is None else {"moe_layout": layout}
    return Side(fmt.name, fmt.weights(model, **options), config)


def _with_dtype(model: Model, code: str | None) -> Model:
    if code is None:
        return model
    return attrs.evolve(model, metadata=attrs.evolve(model.metadata, dtype=BY_CODE[code].name))


def _dtype_code(dtype: str | None) -> str | None:
    if dtype is None:
        return None
    code = FLOAT_CODE_BY_SPELLING.get(dtype.lower())
    if code is None:
        raise SourceError(
            [
                Violation(
                    "--dtype", f"one of {sorted(FLOAT_CODE_BY_SPELLING)}", repr(dtype), "convert"
                )
            ]
        )
    return code


def parse_size(size: int | str) -> int:
    """``"5GB"`` (decimal, as transformers counts) or ``"2GiB"`` or a byte count."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", size, flags=re.IGNORECASE)
    if match is None or int(float(match[1]) * UNITS[(match[2] or "").upper()]) < 1:
        raise SourceError(
            [Violation("--max-shard-size", "a size such as 5GB or 500MiB", repr(size), "convert")]
        )
    return int(float(match[1]) * UNITS[(match[2] or "").upper()])


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as error:
        raise SourceError(
            [Violation(path, "a readable JSON config", str(error), "convert")]
        ) from None
    if not isinstance(document, dict):
        raise SourceError([Violation(path, "a JSON object", type(document).__name__, "convert")])
    return document


# ---------------------------------------------------------------- writing


def _check_destination(dst: str) -> None:
    if os.path.lexists(dst):
        raise DestinationError(
            [Violation(dst, "a path that does not exist yet", "it exists", "convert")]
        )
    parent = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(parent):
        raise DestinationError(
            [Violation(dst, "a parent directory that exists", "none", "convert")]
        )


STAGING = re.compile(r"\.(.+)\.ckptlens-(\d+)\.tmp")


def temporary_sibling(dst: str) -> str:
    """Where ``dst`` is assembled: hidden, in the same directory (so the rename is atomic)."""
    parent, name = os.path.split(os.path.abspath(dst))
    return os.path.join(parent, f".{name}.ckptlens-{os.getpid()}.tmp")


def _write(
    plan: Plan, checkpoint: Checkpoint, config: dict[str, Any], dst: str, progress: bool
) -> None:
    # imported here: it loads threads and ctypes, which importing a format must not pay for
    from ckptlens.weights.execute import execute
    from ckptlens.weights.progress import ProgressLine

    _remove_stale_temporaries(dst)
    staging = temporary_sibling(dst)
    os.mkdir(staging)
    try:
        reporter = ProgressLine(plan.write_bytes) if progress else None
        execute(plan, staging, reporter)
        if reporter is not None:
            reporter.finish()
        write_index(staging, plan.shards)
        write_json(os.path.join(staging, CONFIG_FILE), config)
        _copy_other_files(checkpoint, staging)
        _check_destination(dst)
        os.rename(staging, dst)
        _sync_directory(os.path.dirname(os.path.abspath(dst)))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _copy_other_files(checkpoint: Checkpoint, staging: str) -> None:
    """Tokenizer, generation config and the like travel with the weights; old weights and
    pickles do not (they would disagree with the converted tensors)."""
    weights = {
        SINGLE_FILE,
        INDEX_FILE,
        CONFIG_FILE,
        *(os.path.basename(f) for f in checkpoint.files),
    }
    for name in sorted(os.listdir(checkpoint.directory)):
        if name in weights or name.endswith(PICKLE_SUFFIXES) or name.endswith(".safetensors"):
            continue
        if STAGING.fullmatch(name):  # a conversion being assembled here (dst inside src)
            continue
        source = os.path.join(checkpoint.directory, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(staging, name))
        else:
            shutil.copy2(source, os.path.join(staging, name))


def _sync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_stale_temporaries(dst: str) -> None:
    """Staging directories left by a killed conversion (their process is gone)."""
    parent, name = os.path.split(os.path.abspath(dst))
    for entry in os.listdir(parent):
        match = STAGING.fullmatch(entry)
        if match and match[1] == name and not _alive(int(match[2])):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
