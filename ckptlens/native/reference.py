"""A plain-torch reference forward pass for the native layout: what the native tensors *mean*.

A bit-exact round trip HF -> native -> HF proves a conversion invertible, not correct: a fused
key/value tensor with its heads in the wrong order round-trips perfectly. This module computes
the logits of a native checkpoint directly from the native tensor names of
``ckptlens.native.names``, so ``ckptlens.verify`` can compare them with transformers' logits.

It is written for clarity, not speed: float32 on the CPU, one small function per concept, no
caching, no fused kernels. The numerical definitions (rotary frequencies, masks, norms, routing)
follow transformers 5.24 exactly, because matching them is the point.

This module imports torch; ``ckptlens`` and ``ckptlens.native`` must never import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from attrs import frozen
from torch.nn import functional

from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.native import names
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    DynamicNTKRotary,
    LayerNorm,
    LinearRotary,
    Llama3Rotary,
    Model,
    MoE,
    NoNorm,
    Normalization,
    NoRotary,
    RMSNorm,
    Rotary,
    YarnRotary,
)

Tensors = Mapping[str, torch.Tensor]
LENS_NAME = "native reference"

# ---------------------------------------------------------------- rotary frequencies


@frozen(eq=False)  # tensors have no boolean equality
class RotaryFrequencies:
    """Per-pair inverse frequencies and the factor applied to both cos and sin (yarn only)."""

    inverse: torch.Tensor
    attention_scaling: float = 1.0


def plain_inverse_frequencies(theta: float, head_size: int) -> torch.Tensor:
    """``theta ** (-2i / head_size)`` for each rotated pair i, in float32 like transformers."""
    exponents = torch.arange(0, head_size, 2, dtype=torch.int64).to(torch.float32) / head_size
    return 1.0 / (theta**exponents)


def rotary_frequencies(rotary: Rotary, head_size: int, seq_len: int) -> RotaryFrequencies:
    """The frequencies ``rotary`` uses for a sequence of ``seq_len`` tokens.

    Only dynamic NTK depends on ``seq_len``: transformers recomputes its base from the longest
    position of the current forward pass (the state of a fresh model, no earlier longer call).
    """
    if isinstance(rotary, DefaultRotary):
        return RotaryFrequencies(plain_inverse_frequencies(rotary.theta, head_size))
    if isinstance(rotary, LinearRotary):
        return RotaryFrequencies(plain_inverse_frequencies(rotary.theta, head_size) / rotary.factor)
    if isinstance(rotary, DynamicNTKRotary):
        return RotaryFrequencies(_dynamic_ntk_inverse_frequencies(rotary, head_size, seq_len))
    if isinstance(rotary, Llama3Rotary):
        return RotaryFrequencies(_llama3_inverse_frequencies(rotary, head_size))
    if isinstance(rotary, YarnRotary):
        return _yarn_frequencies(rotary, head_size)
    raise SourceError([Violation("$.rotary", "a rotary with frequencies", repr(rotary), LENS_NAME)])


def _dynamic_ntk_inverse_frequencies(
    rotary: DynamicNTKRotary, head_size: int, seq_len: int
) -> torch.Tensor:
    # Up to the original context the base is unchanged (the scale below is exactly 1).
    length = max(seq_len, rotary.original_context_length)
    scale = rotary.factor * length / rotary.original_context_length - (rotary.factor - 1)
    base = rotary.theta * scale ** (head_size / (head_size - 2))
    return plain_inverse_frequencies(base, head_size)


def _llama3_inverse_frequencies(rotary: Llama3Rotary, head_size: int) -> torch.Tensor:
    inverse = plain_inverse_frequencies(rotary.theta, head_size)
    context = rotary.original_context_length
    low_frequency_wavelength = context / rotary.low_frequency_factor
    high_frequency_wavelength = context / rotary.high_frequency_factor
    wavelength = 2 * math.pi / inverse
    # Long wavelengths are interpolated by the full factor, short ones kept, the band between
    # blended linearly in 1/wavelength.
    scaled = torch.where(wavelength > low_frequency_wavelength, inverse / rotary.factor, inverse)
    smooth = (context / wavelength - rotary.low_frequency_factor) / (
        rotary.high_frequency_factor - rotary.low_frequency_factor
    )
    blended = (1 - smooth) * scaled / rotary.factor + smooth * scaled
    in_band = (wavelength >= high_frequency_wavelength) & (wavelength <= low_frequency_wavelength)
    return torch.where(in_band, blended, scaled)


def _yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def yarn_attention_factor(rotary: YarnRotary) -> float:
    """The cos/sin scale; transformers uses the mscale ratio only when both mscales are set."""
    if rotary.attention_factor is not None:
        return rotary.attention_factor
    if rotary.mscale and rotary.mscale_all_dim:
        return _yarn_mscale(rotary.factor, rotary.mscale) / _yarn_mscale(
            rotary.factor, rotary.mscale_all_dim
        )
    return _yarn_mscale(rotary.factor)


def _yarn_correction_dimension(
    rotations: float, head_size: int, theta: float, context: int
) -> float:
    """The (fractional) pair index whose wavelength fits ``rotations`` times in ``context``."""
    return head_size * math.log(context / (rotations * 2 * math.pi)) / (2 * math.log(theta))


def _yarn_frequencies(rotary: YarnRotary, head_size: int) -> RotaryFrequencies:
    beta_fast = 32.0 if rotary.beta_fast is None else rotary.beta_fast
    beta_slow = 1.0 if rotary.beta_slow is None else rotary.beta_slow
    truncate = True if rotary.truncate is None else rotary.truncate
    context = rotary.original_context_length
    low = _yarn_correction_dimension(beta_fast, head_size, rotary.theta, context)
    high = _yarn_correction_dimension(beta_slow, head_size, rotary.theta, context)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_size - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = ((torch.arange(head_size // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolated = plain_inverse_frequencies(rotary.theta, head_size)
    interpolated = extrapolated / rotary.factor
    # Pairs below `low` rotate fast enough to keep their frequency; above `high`, interpolate.
    inverse = interpolated * ramp + extrapolated * (1 - ramp)
    return RotaryFrequencies(inverse, yarn_attention_factor(rotary))


def rotate_interleaved(x: torch.Tensor, frequencies: RotaryFrequencies) -> torch.Tensor:
    """Rotate ``x`` ``[..., seq, head_size]`` at positions ``0..seq-1``.

    Native rows are interleaved: features ``(2i, 2i+1)`` form the pair rotated by frequency i.
    """
    positions = torch.arange(x.shape[-2], dtype=torch.float32)
    angles = positions[:, None] * frequencies.inverse[None, :]
    cos = angles.cos() * frequencies.attention_scaling
    sin = angles.sin() * frequencies.attention_scaling
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)
    return rotated.flatten(-2)


# ---------------------------------------------------------------- normalization


def normalize(x: torch.Tensor, norm: Normalization, tensors: Tensors, prefix: str) -> torch.Tensor:
    if isinstance(norm, NoNorm):
        return x
    weight = tensors[f"{prefix}.weight"]
    if isinstance(norm, RMSNorm):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.epsilon))
    if isinstance(norm, LayerNorm):
        bias = tensors.get(f"{prefix}.bias") if norm.bias else None
        return functional.layer_norm(x, (x.shape[-1],), weight, bias, norm.epsilon)
    raise SourceError([Violation(prefix, "a known normalization", repr(norm), LENS_NAME)])


# ---------------------------------------------------------------- attention


def attention_allowed(seq_len: int, causal: bool, window: int | None) -> torch.Tensor:
    """Boolean ``[query, key]`` matrix of the key positions each query position may attend to.

    As in transformers, a causal ``window`` of W lets a token see itself and the W - 1 tokens
    before it (``key > query - W``). Without causality the window is symmetric (``|q - k| < W``).
    """
    query = torch.arange(seq_len)[:, None]
    key = torch.arange(seq_len)[None, :]
    allowed = key <= query if causal else torch.ones(seq_len, seq_len, dtype=torch.bool)
    if window is not None:
        allowed = allowed & ((query - key).abs() < window)
    return allowed


def _linear(x: torch.Tensor, tensors: Tensors, prefix: str, bias: bool) -> torch.Tensor:
    return functional.linear(
        x, tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"] if bias else None
    )


def _split_heads(x: torch.Tensor, heads: int, head_size: int) -> torch.Tensor:
    """``[batch, seq, heads * head_size]`` -> ``[batch, heads, seq, head_size]``."""
    batch, seq, _ = x.shape
    return x.view(batch, seq, heads, head_size).transpose(1, 2)


def attention(x: torch.Tensor, mixer: Attention, tensors: Tensors, prefix: str) -> torch.Tensor:
    """Grouped-query attention: query head h reads key/value head ``h // (heads / kv_heads)``."""
    size = mixer.head_size
    query = _split_heads(
        _linear(x, tensors, f"{prefix}.query", mixer.query_bias), mixer.heads, size
    )
    key_value = _linear(x, tensors, f"{prefix}.key_value", mixer.key_value_bias)
    keys, values = key_value.split(mixer.kv_heads * size, dim=-1)  # all keys, then all values
    key = _split_heads(keys, mixer.kv_heads, size)
    value = _split_heads(values, mixer.kv_heads, size)
    if not isinstance(mixer.rotary, NoRotary):
        frequencies = rotary_frequencies(mixer.rotary, size, x.shape[1])
        query = rotate_interleaved(query, frequencies)
        key = rotate_interleaved(key, frequencies)
    group = mixer.heads // mixer.kv_heads
    key = key.repeat_interleave(group, dim=1)
    value = value.repeat_interleave(group, dim=1)
    scale = size**-0.5 if mixer.softmax_scale is None else mixer.softmax_scale
    scores = query @ key.transpose(-1, -2) * scale
    allowed = attention_allowed(x.shape[1], mixer.causal, mixer.window)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    mixed = (weights @ value).transpose(1, 2).flatten(-2)
    return _linear(mixed, tensors, f"{prefix}.dense", mixer.dense_bias)


# ---------------------------------------------------------------- MLPs and mixtures of experts

ACTIVATION_FUNCTIONS = {
    "silu": functional.silu,
    "gelu": functional.gelu,
    "gelu_tanh": lambda x: functional.gelu(x, approximate="tanh"),
    "relu": functional.relu,
}


@frozen(eq=False)  # tensors have no boolean equality
class MLPWeights:
    """The tensors of one MLP (for an MoE, of one expert: a slice of the stacked tensors)."""

    layer_1: torch.Tensor
    layer_2: torch.Tensor
    layer_1_bias: torch.Tensor | None = None
    layer_2_bias: torch.Tensor | None = None

    @classmethod
    def read(cls, mlp: MLP, tensors: Tensors, prefix: str) -> MLPWeights:
        return cls(
            layer_1=tensors[f"{prefix}.layer_1.weight"],
            layer_2=tensors[f"{prefix}.layer_2.weight"],
            layer_1_bias=tensors[f"{prefix}.layer_1.bias"] if mlp.layer_1_bias else None,
            layer_2_bias=tensors[f"{prefix}.layer_2.bias"] if mlp.layer_2_bias else None,
        )

    def expert(self, index: int) -> MLPWeights:
        def pick(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[index]

        return MLPWeights(
            pick(self.layer_1), pick(self.layer_2), pick(self.layer_1_bias), pick(self.layer_2_bias)
        )


def mlp_forward(x: torch.Tensor, mlp: MLP, weights: MLPWeights) -> torch.Tensor:
    """``layer_2(act(gate) * up)`` when gated (layer_1 holds the gate rows, then the up rows),
    else ``layer_2(act(layer_1(x)))``."""
    activate = ACTIVATION_FUNCTIONS[mlp.activation]
    hidden = functional.linear(x, weights.layer_1, weights.layer_1_bias)
    if mlp.gated:
        gate, up = hidden.split(mlp.intermediate_size, dim=-1)
        hidden = activate(gate) * up
    else:
        hidden = activate(hidden)
    return functional.linear(hidden, weights.layer_2, weights.layer_2_bias)


def route(x: torch.Tensor, moe: MoE, tensors: Tensors, prefix: str) -> torch.Tensor:
    """Dense ``[..., experts]`` routing weights: softmax over all experts, keep the top k
    (renormalised to sum to 1 when ``normalize_top_k``), zero for the experts not chosen."""
    logits = _linear(x, tensors, f"{prefix}.router", moe.router.bias)
    probabilities = logits.softmax(dim=-1)
    top_weights, top_experts = probabilities.topk(moe.experts_per_token, dim=-1)
    if moe.router.normalize_top_k:
        top_weights = top_weights / top_weights.sum(dim=-1, keepdim=True)
    return torch.zeros_like(probabilities).scatter(-1, top_experts, top_weights)


def moe_forward(x: torch.Tensor, moe: MoE, tensors: Tensors, prefix: str) -> torch.Tensor:
    routing = route(x, moe, tensors, prefix)
    experts = MLPWeights.read(moe.expert, tensors, f"{prefix}.experts")
    output = torch.zeros_like(x)
    for index in range(moe.experts):
        chosen = routing[..., index] > 0  # run each expert only on the tokens routed to it
        if chosen.any():
            expert_output = mlp_forward(x[chosen], moe.expert, experts.expert(index))
            output[chosen] += routing[..., index][chosen, None] * expert_output
    if moe.shared_expert is not None:
        shared = MLPWeights.read(moe.shared_expert, tensors, f"{prefix}.shared")
        output = output + mlp_forward(x, moe.shared_expert, shared)
    return output


def feed_forward(x: torch.Tensor, mlp: MLP | MoE, tensors: Tensors, prefix: str) -> torch.Tensor:
    if isinstance(mlp, MoE):
        return moe_forward(x, mlp, tensors, prefix)
    return mlp_forward(x, mlp, MLPWeights.read(mlp, tensors, prefix))


# ---------------------------------------------------------------- blocks and the model


def block_forward(x: torch.Tensor, block: Block, tensors: Tensors, prefix: str) -> torch.Tensor:
    """Pre-norm residual block: ``x + mixer(norm_1(x))``, then ``x + mlp(norm_2(x))``."""
    mixer_input = normalize(x, block.normalization, tensors, f"{prefix}.norm_1")
    x = x + attention(mixer_input, block.mixer, tensors, f"{prefix}.mixer")
    mlp_input = normalize(x, block.normalization, tensors, f"{prefix}.norm_2")
    return x + feed_forward(mlp_input, block.mlp, tensors, f"{prefix}.mlp")


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return f"shape {list(shape)}"


def tensor_violations(model: Model, tensors: Tensors) -> list[Violation]:
    """Every missing, unexpected or wrongly shaped tensor, compared with ``model_tensors``."""
    expected = names.model_tensors(model)
    violations = []
    for name in sorted(expected.keys() | tensors.keys()):
        wanted = _shape(expected[name]) if name in expected else "no such tensor"
        found = _shape(tensors[name].shape) if name in tensors else "none"
        if wanted != found:
            violations.append(Violation(f"$['{name}']", wanted, found, LENS_NAME))
    return violations


@frozen(eq=False)  # tensors have no boolean equality
class ReferenceModel:
    """A native model with its tensors (checked complete and correctly shaped), in float32."""

    config: Model
    tensors: Mapping[str, torch.Tensor]

    @classmethod
    def build(
        cls, config: Model, tensors: Tensors, dtype: torch.dtype = torch.float32
    ) -> ReferenceModel:
        """Check ``tensors`` against ``config``; raise ``SourceError`` listing every problem."""
        violations = tensor_violations(config, tensors)
        if violations:
            raise SourceError(violations)
        return cls(config, {name: tensor.to(dtype) for name, tensor in tensors.items()})

    @property
    def output_weight(self) -> torch.Tensor:
        return self.tensors[names.EMBEDDINGS if self.config.tied_embeddings else names.OUTPUT]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[prediction_heads, batch, seq, vocab]`` for integer ``tokens`` ``[batch, seq]``.

        Head 0 is the usual next-token head. With several prediction heads the decoder's last
        block belongs to head 0, and every other head runs its own copy of that block on the
        trunk output (see ``Head``); all heads share the output projection.
        """
        with torch.no_grad():
            blocks = self.config.decoder.blocks_in_order
            heads = self.config.head.prediction_heads
            trunk_length = len(blocks) - 1 if heads > 1 else len(blocks)
            x = self.tensors[names.EMBEDDINGS][tokens]
            for index in range(trunk_length):
                x = block_forward(x, blocks[index], self.tensors, names.block_prefix(index))
            return torch.stack([self._head_logits(x, distance) for distance in range(heads)])

    def _head_logits(self, trunk: torch.Tensor, distance: int) -> torch.Tensor:
        blocks = self.config.decoder.blocks_in_order
        if distance == 0:
            block_prefix, norm_prefix = names.block_prefix(len(blocks) - 1), names.FINAL_NORM
        else:
            head_prefix = names.prediction_head_prefix(distance)
            block_prefix, norm_prefix = f"{head_prefix}.block", f"{head_prefix}.final_norm"
        x = trunk
        if self.config.head.prediction_heads > 1:
            x = block_forward(trunk, blocks[-1], self.tensors, block_prefix)
        x = normalize(x, self.config.head.final_norm, self.tensors, norm_prefix)
        return functional.linear(x, self.output_weight)
