"""ModelEquiv: a format's view means what the model's own code computes.

The other laws check a lens against itself; a key misread the same way by get and put passes
all of them. Here the oracle is transformers' model class for the format (``Format.peer_model``):

1. a tiny view ``v`` is drawn from the format's domain (``laws.tiny``) and written into a drawn
   source ``s`` (``put(v, s)``: the source's own spellings, aliases and absent defaults kept);
2. transformers builds its model from that config, in float64 with eager attention, and its
   weights are set at random (norm weights and biases included, so a misread norm or bias is
   visible), then saved with ``save_pretrained`` (its save-time names);
3. those tensors go through the format's weight lens (``Format.weights(v)``) to native names; the
   saved names and shapes must be exactly the lens's, and the native reference forward of
   ``get(put(v, s))`` must give transformers' logits on the same tokens;
4. the same, for the model transformers builds from ``create(v)``.

Before any drawing, every spelling of the format's activation table is checked against
transformers' ``ACT2FN`` numerically (an alias read as its neighbour fails here at once).

Tolerance. Both sides run in float64, but transformers computes RMSNorm, the attention softmax
and the router softmax in float32 even in a float64 model, and rotary cos/sin in float32 (the
reference does the latter too). So the noise is float32 rounding inside those islands, not
float64's. Measured with the ``thorough`` profile (200 tiny models per format, 2026-12-01): at
most 5.9e-7 of the logit scale for llama, 5.1e-7 mistral, 4.4e-7 qwen2, 1.1e-6 mixtral (its
router). ``TOLERANCE`` is 1e-5, nine times the largest; a semantic slip at these sizes moves
logits by 1e-4 to 1 of their scale (exact ``gelu`` read for ``gelu_new``: about 2e-4).

torch and transformers are imported inside the functions: importing ``ckptlens.laws`` stays
light.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import reject

from ckptlens.laws.report import LawBroken
from ckptlens.laws.tiny import TinyExample
from ckptlens.lenses.core import Lens
from ckptlens.lenses.fields import Field
from ckptlens.lenses.values import Enum

# Largest |native - transformers| logit difference that passes, as a fraction of
# max(1, largest |logit|): nine times the largest noise measured (module docstring). The
# report of every run prints the largest difference it saw.
TOLERANCE = 1e-5
BATCH = 2
WEIGHT_SCALE = 0.5  # weights large enough that activations leave their near-linear range
ACTIVATION_PROBES = 401


def not_run_reason(fmt: Any) -> str | None:
    """Why ModelEquiv cannot run on ``fmt``, or ``None`` when it can."""
    if fmt is None or not hasattr(fmt, "weights"):
        return "no runnable model code (a bare lens, not a format)"
    if getattr(fmt, "peer_model", None) is None:
        kind = "remote code, not shipped with transformers" if fmt.remote_code else "none declared"
        return f"no runnable model code ({kind})"
    import transformers

    if not hasattr(transformers, fmt.peer_model):
        return f"no runnable model code (transformers has no {fmt.peer_model})"
    return None


# ---------------------------------------------------------------- the activation table


def activation_tables(lens: Lens) -> Iterator[Enum]:
    """The value types of every field of ``lens`` whose view is an MLP activation."""
    seen: list[Enum] = []
    stack = [lens]
    while stack:
        node = stack.pop()
        stack.extend(node.children())
        is_table = isinstance(node, Field) and isinstance(node.type, Enum)
        names = [str(view[-1]) for view in node.views if view] if is_table else []
        if "activation" in names and node.type not in seen:
            seen.append(node.type)
            yield node.type


def activation_problems(lens: Lens) -> list[str]:
    """Each spelling (canonical or alias) whose native function differs from transformers'
    ``ACT2FN`` of that same spelling, in float64 over [-8, 8]."""
    import torch
    from transformers.activations import ACT2FN

    from ckptlens.native.reference.mlp import ACTIVATION_FUNCTIONS

    probe = torch.linspace(-8, 8, ACTIVATION_PROBES, dtype=torch.float64)
    problems = []
    for table in activation_tables(lens):
        for spelling in [*table.names, *table.aliases]:
            native = table.read(spelling)
            if spelling not in ACT2FN:
                problems.append(f"hidden_act {spelling!r}: transformers has no such activation")
                continue
            theirs = ACT2FN[spelling](probe)
            ours = ACTIVATION_FUNCTIONS[native](probe)
            gap = float((theirs - ours).abs().max())
            if not gap <= 1e-12:
                problems.append(
                    f"hidden_act {spelling!r} reads as native {native!r}, which differs from "
                    f"transformers' {spelling!r} by up to {gap:.3g}"
                )
    return problems


# ---------------------------------------------------------------- building both models


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()
        logging.set_verbosity(level)


def peer_accepts(fmt: Any) -> Callable[[dict], bool]:
    """Whether transformers' config class loads a source (and ``create`` of its view)."""

    def accepts(source: dict) -> bool:
        try:
            with _quiet():
                fmt.peer_config(source)
                fmt.peer_config(fmt.lens.create(fmt.lens.get(source)))
        except Exception:
            return False
        return True

    return accepts


def build_peer_model(fmt: Any, hf_config: dict) -> Any:
    """transformers' model for ``hf_config``: float64, eager attention and experts."""
    import torch
    import transformers

    config = fmt.peer_config(hf_config)
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"  # grouped_mm has no float64 kernel
    # Generic keys a drawn source may carry that change what forward returns or how it is
    # exported, not the logits (passthrough metadata for the lens): set to the plain path.
    config.return_dict = True
    config.output_hidden_states = False
    config.output_attentions = False
    config.torchscript = False
    model_class = getattr(transformers, fmt.peer_model)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return model_class(config).eval()
    finally:
        torch.set_default_dtype(previous)


def randomize(model: Any, seed: int) -> None:
    """Every parameter random (biases and norm weights too), seeded."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            random = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_(random * WEIGHT_SCALE)


def saved_tensors(model: Any) -> dict[str, Any]:
    """The model's tensors under the names ``save_pretrained`` writes (its save-time renames)."""
    from pathlib import Path

    from safetensors.torch import load_file

    tensors: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        model.save_pretrained(directory)
        for shard in sorted(Path(directory).glob("*.safetensors")):
            tensors.update(load_file(shard))
    return tensors


def to_native(weight_lens: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    """HF tensors through the weight lens's ops (bytes moved as the converter moves them)."""
    import numpy as np
    import torch

    native: dict[str, Any] = {}
    for mapping in weight_lens.mappings:
        arrays = mapping.op.apply([tensors[name].numpy() for name in mapping.external])
        for name, array in zip(mapping.native, arrays, strict=True):
            native[name] = torch.from_numpy(np.ascontiguousarray(array))
    return native


def _name_problems(weight_lens: Any, tensors: dict[str, Any]) -> list[str]:
    expected = weight_lens.external_shapes()
    problems = [
        f"{n}: transformers saves it, the weight lens has no such tensor"
        for n in sorted(set(tensors) - set(expected))
    ]
    problems += [
        f"{n}: in the weight lens, transformers saves no such tensor"
        for n in sorted(set(expected) - set(tensors))
    ]
    problems += [
        f"{n}: shape {list(tensors[n].shape)} saved, {list(shape)} in the weight lens"
        for n, shape in expected.items()
        if n in tensors and tuple(tensors[n].shape) != tuple(shape)
    ]
    return problems


def _weight_lens(fmt: Any, view: Any, saved: dict[str, Any]) -> Any:
    """The format's weight lens for ``view``, in the expert layout transformers saved."""
    lens = fmt.weights(view)
    if set(lens.external_shapes()) == set(saved):
        return lens
    with contextlib.suppress(Exception):  # MoE formats: the other on-disk expert layout
        fused = fmt.weights(view, moe_layout="fused")
        if set(fused.external_shapes()) == set(saved):
            return fused
    return lens


# ---------------------------------------------------------------- the law


class Comparison:
    """What the run measured: the largest relative difference seen, and the drawn sources
    transformers could not build a model for (by error), for the report."""

    def __init__(self) -> None:
        self.largest = 0.0
        self.unbuildable: Counter[str] = Counter()


def model_equiv(fmt: Any, example: TinyExample, seen: Comparison) -> None:
    """Both configs of ``example`` (its source and ``create``) build transformers models whose
    logits the native reference reproduces."""
    import torch

    from ckptlens.native.reference import ReferenceModel

    lens = fmt.lens
    view = lens.get(example.source)
    tokens = torch.randint(
        0,
        view.vocab_size,
        (BATCH, example.seq_len),
        generator=torch.Generator().manual_seed(example.seed),
    )
    with _quiet():
        try:
            model = build_peer_model(fmt, example.source)
        except Exception as error:
            # transformers' own code crashes on some configs its config class accepts (Mixtral
            # with dynamic or yarn rope and no ``head_dim`` key); such a source says nothing
            # about what a key means. Counted and reported; ``create(v)`` must still build.
            seen.unbuildable[f"{type(error).__name__}: {error}"[:120]] += 1
            reject()
        randomize(model, example.seed)
        saved = saved_tensors(model)
        weight_lens = _weight_lens(fmt, view, saved)
        problems = _name_problems(weight_lens, saved)
        if problems:
            raise LawBroken(
                "the weight lens's tensors are not the ones transformers saves",
                s=example.source,
                v=view,
                problems=problems,
            )
        reference = ReferenceModel.build(view, to_native(weight_lens, saved), torch.float64)
        ours = reference.forward(tokens)[0]
        created = lens.create(view)
        for label, config in (("put(v, s)", example.source), ("create(v)", created)):
            peer = model if config is example.source else build_peer_model(fmt, config)
            if peer is not model:
                peer.load_state_dict(model.state_dict())
            inputs = (fmt.peer_inputs or _token_inputs)(view, tokens)
            try:
                with torch.no_grad():
                    theirs = peer(**inputs, return_dict=True).logits
            except Exception as error:
                raise LawBroken(
                    f"transformers' model of {label} fails: {type(error).__name__}: {error}",
                    hf_config=config,
                    v=view,
                ) from error
            _compare(ours, theirs, label, config, view, seen)


def _token_inputs(view: Any, tokens: Any) -> dict[str, Any]:
    return {"input_ids": tokens}


def _compare(ours: Any, theirs: Any, label: str, config: dict, view: Any, seen: Comparison) -> None:
    scale = max(1.0, float(theirs.abs().max()))
    difference = float((ours - theirs).abs().max())
    relative = difference / scale
    if not relative <= TOLERANCE:  # NaN never passes
        raise LawBroken(
            f"the native reference and transformers' model of {label} disagree: largest logit "
            f"difference {difference:.3g} = {relative:.3g} of the logit scale "
            f"(tolerance {TOLERANCE:g})",
            hf_config=config,
            v=view,
        )
    seen.largest = max(seen.largest, relative)


# ---------------------------------------------------------------- the weight round trip


def weight_round_trip(fmt: Any, example: TinyExample) -> None:
    """The view's weight lens takes a random HF checkpoint to native and back bit-exactly
    (and a random native one to HF and back), on every dtype width the converter moves."""
    import numpy as np

    lens = fmt.weights(example.view)
    rng = np.random.default_rng(example.seed)
    for dtype in (np.float32, np.uint16):
        external = {n: _random(rng, s, dtype) for n, s in lens.external_shapes().items()}
        native = {n: _random(rng, s, dtype) for n, s in lens.native_shapes().items()}
        _same(external, _through(lens, external, forward=False), "HF -> native -> HF", example)
        _same(native, _through(lens, native, forward=True), "native -> HF -> native", example)


def _random(rng: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    import numpy as np

    raw = rng.integers(0, 2**16, size=shape, dtype=np.uint16)
    return raw.astype(np.float32) * 0.37 - 11.0 if dtype is np.float32 else raw


def _through(lens: Any, tensors: dict[str, Any], forward: bool) -> dict[str, Any]:
    """``tensors`` to the other side and back; ``forward``: they are native tensors."""
    there: dict[str, Any] = {}
    for mapping in lens.mappings:
        source, target = (
            (mapping.native, mapping.external) if forward else (mapping.external, mapping.native)
        )
        op = mapping.op.inverse() if forward else mapping.op
        there.update(zip(target, op.apply([tensors[n] for n in source]), strict=True))
    back: dict[str, Any] = {}
    for mapping in lens.mappings:
        source, target = (
            (mapping.external, mapping.native) if forward else (mapping.native, mapping.external)
        )
        op = mapping.op if forward else mapping.op.inverse()
        back.update(zip(target, op.apply([there[n] for n in source]), strict=True))
    return back


def _same(before: dict[str, Any], after: dict[str, Any], label: str, example: TinyExample) -> None:
    import numpy as np

    differ = sorted(set(before) ^ set(after))
    differ += [
        name
        for name in before
        if name in after
        and (
            before[name].shape != after[name].shape
            or not np.array_equal(
                before[name].view(np.uint8), np.ascontiguousarray(after[name]).view(np.uint8)
            )
        )
    ]
    if differ:
        raise LawBroken(f"weight lens {label} is not bit-exact", v=example.view, tensors=differ)
