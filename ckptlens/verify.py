"""``ckptlens verify``: the native checkpoint computes what the HF checkpoint computes.

A bit-exact round trip proves a conversion invertible, not correct (a key/value split with its
heads in the wrong order round-trips perfectly). ``verify`` runs transformers' model on the HF
checkpoint and the reference model (``ckptlens.native.reference``) on the native checkpoint over
the same random tokens, in float64 by default, and compares the logits.

The tolerance is relative to the size of the logits: a difference passes when it is at most
``tolerance * max(1, largest |HF logit|)``. In float64 the remaining noise is not float64's:
transformers computes RMSNorm, the attention softmax and the router softmax in float32 even in a
float64 model, and rotary cos/sin in float32 (the reference does too). Measured on the test
models: about 2e-7 of the logit scale (at most 4.4e-7 absolute over ten variants); the default
1e-6 sits above that and below the smallest semantic slip we know, ``gelu_new`` computed as exact
``gelu`` (a few 1e-6 with small real-model weights, hidden under float32's 1e-4). ``--dtype
float32`` keeps the old float32 comparison with its 1e-4 default (two float32 implementations
summing in a different order: 3e-7 of the scale on two-layer models, 1.3e-6 on a 12-layer,
512-wide Llama over 256 tokens). A layout error moves the logits by a sizeable fraction of their
scale, far beyond either tolerance.

torch and transformers are imported inside the functions that need them, so that building the
command-line parser stays cheap and ``import ckptlens`` never imports torch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ckptlens.lenses.errors import ArgumentError, LensError, SourceError, Violation
from ckptlens.native.checkpoint import CONFIG_FILE, FORMAT_NAME, model_from_native_config
from ckptlens.weights.safetensors_header import INDEX_FILE

if TYPE_CHECKING:
    import torch

    from ckptlens.native.reference import ReferenceModel

DEFAULT_TOLERANCE = 1e-6
FLOAT32_TOLERANCE = 1e-4
DEFAULT_SEQ_LEN = 32
LENS_NAME = "verify"
UNVERIFIABLE = (
    "its modeling code is not part of transformers, so it cannot be verified offline; "
    "it is checked by round trips and shapes instead"
)
DESCRIPTION = (
    "Run transformers' model on HF_DIR and the ckptlens reference model on NATIVE_DIR over the "
    "same random tokens in float64 (or float32), and compare the logits. Exit status: 0 when "
    "they agree within the tolerance, 1 when they do not, 2 when a checkpoint cannot be used."
)


@frozen
class VerifyReport:
    """The outcome of one comparison. Differences are absolute, in logit units."""

    max_abs_diff: float
    tolerance: float
    logit_scale: float  # the largest |logit| transformers produced
    passed: bool
    head_diffs: tuple[float, ...]  # one per prediction head compared (transformers gives head 0)
    unverified_heads: int  # native prediction heads transformers has no logits for
    batch: int
    seq_len: int
    seed: int

    @property
    def allowed(self) -> float:
        return allowed_difference(self.tolerance, self.logit_scale)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"{verdict}: largest logit difference {self.max_abs_diff:.3e},"
            f" allowed {self.allowed:.3e}"
            f" = tolerance {self.tolerance:g} x max(1, largest |logit| {self.logit_scale:.3g}),"
            f" batch {self.batch}, {self.seq_len} tokens, seed {self.seed}",
            *(f"  head {index}: {diff:.3e}" for index, diff in enumerate(self.head_diffs)),
        ]
        if self.unverified_heads:
            lines.append(
                f"  {self.unverified_heads} more prediction head(s) not compared:"
                " transformers computes only the next-token head"
            )
        return "\n".join(lines)


def allowed_difference(tolerance: float, logit_scale: float) -> float:
    """The largest difference that passes: float32 error grows with the magnitude of logits."""
    return tolerance * max(1.0, logit_scale)


def _within(difference: float, allowed: float) -> bool:
    """A NaN or infinite difference (or logit scale) never passes."""
    return math.isfinite(difference) and math.isfinite(allowed) and difference <= allowed


# ---------------------------------------------------------------- the native side


def _error(path: str, expected: str, found: str) -> SourceError:
    return SourceError([Violation(path, expected, found, LENS_NAME)])


def _read_json(path: Path) -> Any:
    from ckptlens.files import read_json_object

    return read_json_object(path)


def _is_native(directory: Path) -> bool:
    try:
        document = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT_NAME


def _check_order(hf_dir: Path, native_dir: Path) -> None:
    """``verify NATIVE HF`` is a slip worth naming rather than a puzzling load error."""
    if _is_native(hf_dir) and not _is_native(native_dir):
        raise ArgumentError(
            [
                Violation(
                    "HF_DIR NATIVE_DIR",
                    "the HF checkpoint first, then the native one",
                    f"the arguments swapped: {hf_dir} is a native checkpoint; run "
                    f"`ckptlens verify {native_dir} {hf_dir}`",
                    LENS_NAME,
                )
            ]
        )


def native_shard_files(directory: Path) -> list[Path]:
    """The shards named by the index when there is one, else every ``*.safetensors`` file."""
    index_path = directory / INDEX_FILE
    if index_path.exists():
        weight_map = _read_json(index_path).get("weight_map", {})
        return [directory / name for name in sorted(set(weight_map.values()))]
    return sorted(directory.glob("*.safetensors"))


def load_native_tensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for shard in native_shard_files(directory):
        try:
            shard_tensors = load_file(shard)
        except (OSError, SafetensorError) as problem:
            raise _error(str(shard), "a readable safetensors file", str(problem)) from None
        repeated = sorted(shard_tensors.keys() & tensors.keys())
        if repeated:
            raise _error(str(shard), "each tensor in one shard", f"{repeated} repeated")
        tensors.update(shard_tensors)
    return tensors


def load_reference_model(native_dir: str | Path, dtype: str = "float64") -> ReferenceModel:
    """The reference model of a native checkpoint directory; raises ``SourceError``."""
    import torch

    from ckptlens.native.reference import ReferenceModel

    directory = Path(native_dir)
    config = model_from_native_config(_read_json(directory / CONFIG_FILE))
    return ReferenceModel.build(config, load_native_tensors(directory), getattr(torch, dtype))


# ---------------------------------------------------------------- the HF side


def _remote_code_model_types() -> set[str]:
    """Formats whose modeling code ships with checkpoints (remote code), not transformers."""
    from ckptlens import formats

    return {fmt.model_type for fmt in map(formats.get, formats.names()) if fmt.remote_code}


def load_hf_model(hf_dir: str | Path, dtype: str = "float64") -> Any:
    """transformers' causal LM with eager attention and experts (the plainest code path)."""
    import torch
    from transformers import AutoModelForCausalLM

    document = _read_json(Path(hf_dir) / CONFIG_FILE)
    model_type = document.get("model_type") if isinstance(document, dict) else None
    if model_type in _remote_code_model_types():
        raise _error(
            "$.model_type", "a model transformers implements", f"{model_type!r}: {UNVERIFIABLE}"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(hf_dir),
            dtype=getattr(torch, dtype),
            attn_implementation="eager",
            experts_implementation="eager",  # grouped_mm has no float64 kernel
        )
    except (OSError, ValueError, KeyError) as problem:
        found = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
        raise _error(str(hf_dir), "a checkpoint transformers can load", found) from problem
    return model.eval()


def random_tokens(vocab_size: int, batch: int, seq_len: int, seed: int) -> torch.Tensor:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, seq_len), generator=generator)


# ---------------------------------------------------------------- the comparison


def verify(
    hf_dir: str | Path,
    native_dir: str | Path,
    *,
    seed: int = 0,
    batch: int = 2,
    seq_len: int = DEFAULT_SEQ_LEN,
    tolerance: float | None = None,
    dtype: str = "float64",
) -> VerifyReport:
    """Compare transformers' logits on ``hf_dir`` with the reference logits on ``native_dir``.

    Raises ``SourceError`` when either checkpoint cannot be loaded or their vocabularies differ;
    a numerical mismatch is not an error but a report with ``passed`` false.
    """
    import torch

    if tolerance is None:
        tolerance = DEFAULT_TOLERANCE if dtype == "float64" else FLOAT32_TOLERANCE
    _check_order(Path(hf_dir), Path(native_dir))
    reference = load_reference_model(native_dir, dtype)
    hf_model = load_hf_model(hf_dir, dtype)
    vocab_size = reference.config.vocab_size
    hf_vocab_size = hf_model.config.vocab_size
    if hf_vocab_size != vocab_size:
        raise _error("$.vocab_size", f"{vocab_size} (the native vocabulary)", str(hf_vocab_size))
    tokens = random_tokens(vocab_size, batch, seq_len, seed)
    with torch.no_grad():
        hf_logits = hf_model(input_ids=tokens).logits.to(getattr(torch, dtype))
    native_logits = reference.forward(tokens)
    head_diffs = (float((native_logits[0] - hf_logits).abs().max()),)
    logit_scale = float(hf_logits.abs().max())
    max_abs_diff = max(head_diffs)
    return VerifyReport(
        max_abs_diff=max_abs_diff,
        tolerance=tolerance,
        logit_scale=logit_scale,
        passed=_within(max_abs_diff, allowed_difference(tolerance, logit_scale)),
        head_diffs=head_diffs,
        unverified_heads=native_logits.shape[0] - len(head_diffs),
        batch=batch,
        seq_len=seq_len,
        seed=seed,
    )


# ---------------------------------------------------------------- command line


def add_verify_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ckptlens verify HF_DIR NATIVE_DIR``; its handler is in ``defaults["handler"]``."""
    parser = subparsers.add_parser(
        "verify",
        help="compare transformers' logits on an HF checkpoint with the native reference model",
        description=DESCRIPTION,
    )
    parser.add_argument("hf_dir", metavar="HF_DIR", help="the HF checkpoint directory")
    parser.add_argument("native_dir", metavar="NATIVE_DIR", help="the native checkpoint directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random tokens")
    parser.add_argument("--batch", type=_positive_int, default=2, help="sequences per batch")
    parser.add_argument(
        "--seq-len", type=_positive_int, default=DEFAULT_SEQ_LEN, help="tokens per sequence"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="largest difference allowed, as a fraction of the largest |logit| (at least 1);"
        f" default {DEFAULT_TOLERANCE:g} in float64, {FLOAT32_TOLERANCE:g} in float32",
    )
    parser.add_argument(
        "--dtype",
        choices=["float64", "float32"],
        default="float64",
        help="precision of both models (float64: small semantic differences stand out)",
    )
    parser.set_defaults(handler=run_verify)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run_verify(args: argparse.Namespace) -> int:
    """Exit status: 0 when the logits agree, 1 on a mismatch, 2 when a checkpoint is unusable."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keep the command's output to the verdict
    try:
        report = verify(
            args.hf_dir,
            args.native_dir,
            seed=args.seed,
            batch=args.batch,
            seq_len=args.seq_len,
            tolerance=args.tolerance,
            dtype=args.dtype,
        )
    except LensError as error:
        print(f"ckptlens verify: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.passed else 1
