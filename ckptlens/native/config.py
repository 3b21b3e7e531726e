"""The native architecture schema: what a decoder language model *is*, free of any HF spelling.

Every class is a frozen attrs class. Each field is marked as architecture (changes the
function the model computes or the shape of its tensors) or metadata (context length, token
ids, dtype, training knobs): the mark lives in the attrs field metadata under ``"kind"`` so
coverage walkers can tell them apart. Unions (rotary, mlp, normalization, decoder) are tagged
by the class attribute ``tag``, which the converter writes as ``"type"`` in the unstructured
dict. Validators state the invariants; a violating instance cannot be built.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import attrs
from attrs import frozen

from ckptlens.native.bounds import MAX_COUNT, count

ARCHITECTURE = "architecture"
METADATA = "metadata"


def arch(**kwargs: Any) -> Any:
    """An architecture field: it changes what the model computes or the shape of its tensors."""
    return attrs.field(metadata={"kind": ARCHITECTURE}, **kwargs)


def meta(**kwargs: Any) -> Any:
    """A metadata field: carried faithfully, but the forward pass does not depend on it."""
    return attrs.field(metadata={"kind": METADATA}, **kwargs)


def _positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def _positive_float(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{attribute.name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _optional(validator: Any) -> Any:
    return attrs.validators.optional(validator)


def _bool(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not bool:
        raise ValueError(f"{attribute.name} must be a boolean, got {value!r}")


# ---------------------------------------------------------------- rotary position embeddings


@frozen
class NoRotary:
    """No rotary embedding (NoPE layers, or models with learned absolute positions)."""

    tag: ClassVar[str] = "none"


@frozen
class DefaultRotary:
    """Plain RoPE with base ``theta``."""

    tag: ClassVar[str] = "default"
    theta: float = arch(validator=_positive_float)


@frozen
class LinearRotary:
    """Position interpolation: positions are divided by ``factor``."""

    tag: ClassVar[str] = "linear"
    theta: float = arch(validator=_positive_float)
    factor: float = arch(validator=_positive_float)


@frozen
class DynamicNTKRotary:
    """Dynamic NTK scaling: the base grows once a sequence exceeds ``original_context_length``."""

    tag: ClassVar[str] = "dynamic"
    theta: float = arch(validator=_positive_float)
    factor: float = arch(validator=_positive_float)
    original_context_length: int = arch(validator=_positive_int)


@frozen
class Llama3Rotary:
    """Llama 3.1 frequency-band scaling."""

    tag: ClassVar[str] = "llama3"
    theta: float = arch(validator=_positive_float)
    factor: float = arch(validator=_positive_float)
    low_frequency_factor: float = arch(validator=_positive_float)
    high_frequency_factor: float = arch(validator=_positive_float)
    original_context_length: int = arch(validator=_positive_int)

    def __attrs_post_init__(self) -> None:
        if self.high_frequency_factor <= self.low_frequency_factor:
            raise ValueError(
                "high_frequency_factor must be greater than low_frequency_factor, got "
                f"{self.high_frequency_factor} <= {self.low_frequency_factor}"
            )


@frozen
class YarnRotary:
    """YaRN scaling. Optional fields are ``None`` where the model uses the method's own default."""

    tag: ClassVar[str] = "yarn"
    theta: float = arch(validator=_positive_float)
    factor: float = arch(validator=_positive_float)
    original_context_length: int = arch(validator=_positive_int)
    attention_factor: float | None = arch(default=None, validator=_optional(_positive_float))
    beta_fast: float | None = arch(default=None, validator=_optional(_positive_float))
    beta_slow: float | None = arch(default=None, validator=_optional(_positive_float))
    mscale: float | None = arch(default=None, validator=_optional(_positive_float))
    mscale_all_dim: float | None = arch(default=None, validator=_optional(_positive_float))
    truncate: bool | None = arch(default=None, validator=_optional(_bool))


Rotary = NoRotary | DefaultRotary | LinearRotary | DynamicNTKRotary | Llama3Rotary | YarnRotary
ROTARY_TYPES: tuple[type, ...] = (
    NoRotary,
    DefaultRotary,
    LinearRotary,
    DynamicNTKRotary,
    Llama3Rotary,
    YarnRotary,
)

# ---------------------------------------------------------------- normalization


@frozen
class RMSNorm:
    tag: ClassVar[str] = "rms_norm"
    epsilon: float = arch(validator=_positive_float)


@frozen
class LayerNorm:
    tag: ClassVar[str] = "layer_norm"
    epsilon: float = arch(validator=_positive_float)
    bias: bool = arch(default=True, validator=_bool)


@frozen
class NoNorm:
    tag: ClassVar[str] = "none"


Normalization = RMSNorm | LayerNorm | NoNorm
NORMALIZATION_TYPES: tuple[type, ...] = (RMSNorm, LayerNorm, NoNorm)

# ---------------------------------------------------------------- mixers

ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu")


def _activation(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in ACTIVATIONS:
        raise ValueError(f"{attribute.name} must be one of {list(ACTIVATIONS)}, got {value!r}")


@frozen
class Attention:
    """Multi-head attention with grouped key/value heads.

    Biases follow the native tensor layout: the query projection, the fused key/value
    projection and the output (dense) projection each have their own bias switch.
    ``softmax_scale`` is ``None`` for the usual ``head_size ** -0.5``.
    """

    tag: ClassVar[str] = "attention"
    heads: int = arch(validator=_positive_int)
    kv_heads: int = arch(validator=_positive_int)
    head_size: int = arch(validator=_positive_int)
    rotary: Rotary = arch()
    query_bias: bool = arch(default=False, validator=_bool)
    key_value_bias: bool = arch(default=False, validator=_bool)
    dense_bias: bool = arch(default=False, validator=_bool)
    causal: bool = arch(default=True, validator=_bool)
    window: int | None = arch(default=None, validator=_optional(_positive_int))
    softmax_scale: float | None = arch(default=None, validator=_optional(_positive_float))

    def __attrs_post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(
                f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})"
            )
        if not isinstance(self.rotary, ROTARY_TYPES):
            raise ValueError(f"rotary must be one of the rotary classes, got {self.rotary!r}")
        if not isinstance(self.rotary, NoRotary) and self.head_size % 2:
            raise ValueError(
                f"rotary embeddings rotate pairs of channels: head_size ({self.head_size}) "
                "must be even"
            )


Mixer = Attention
MIXER_TYPES: tuple[type, ...] = (Attention,)

# ---------------------------------------------------------------- MLPs


@frozen
class MLP:
    """A two-layer MLP. ``layer_1`` is the input projection (gate and up fused when gated),
    ``layer_2`` the output projection; each has its own bias switch."""

    tag: ClassVar[str] = "mlp"
    intermediate_size: int = arch(validator=_positive_int)
    gated: bool = arch(default=True, validator=_bool)
    activation: str = arch(default="silu", validator=_activation)
    layer_1_bias: bool = arch(default=False, validator=_bool)
    layer_2_bias: bool = arch(default=False, validator=_bool)


@frozen
class Router:
    """Top-k softmax routing. ``normalize_top_k`` renormalises the selected weights to sum to 1."""

    normalize_top_k: bool = arch(default=True, validator=_bool)
    bias: bool = arch(default=False, validator=_bool)


@frozen
class MoE:
    """A mixture of identical expert MLPs, with optional always-on shared expert."""

    tag: ClassVar[str] = "moe"
    experts: int = arch(validator=count)
    experts_per_token: int = arch(validator=_positive_int)
    expert: MLP = arch()
    router: Router = arch(factory=Router)
    shared_expert: MLP | None = arch(default=None)

    def __attrs_post_init__(self) -> None:
        if self.experts_per_token > self.experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) must not exceed "
                f"experts ({self.experts})"
            )


FeedForward = MLP | MoE
FEED_FORWARD_TYPES: tuple[type, ...] = (MLP, MoE)

# ---------------------------------------------------------------- blocks and decoders


@frozen
class Block:
    """A pre-norm residual block: ``x + mixer(norm_1(x))`` then ``x + mlp(norm_2(x))``.
    Both norms have the type and epsilon given by ``normalization``."""

    mixer: Mixer = arch()
    mlp: FeedForward = arch()
    normalization: Normalization = arch()


@frozen
class FixedDecoder:
    """``num_blocks`` copies of one block configuration."""

    tag: ClassVar[str] = "fixed"
    block: Block = arch()
    num_blocks: int = arch(validator=count)

    def block_at(self, index: int) -> Block:
        return self.block

    @property
    def blocks_in_order(self) -> tuple[Block, ...]:
        return (self.block,) * self.num_blocks


@frozen
class PatternDecoder:
    """Named block configurations and the fully expanded per-layer ``pattern`` of names."""

    tag: ClassVar[str] = "pattern"
    blocks: dict[str, Block] = arch()
    pattern: tuple[str, ...] = arch(converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not 1 <= len(self.pattern) <= MAX_COUNT:
            raise ValueError(f"pattern must name from 1 to {MAX_COUNT} blocks")
        unknown = sorted({name for name in self.pattern if name not in self.blocks})
        if unknown:
            raise ValueError(
                f"pattern names unknown blocks {unknown}; known: {sorted(self.blocks)}"
            )
        unused = sorted(set(self.blocks) - set(self.pattern))
        if unused:
            raise ValueError(f"blocks {unused} are declared but never used in pattern")

    @property
    def num_blocks(self) -> int:
        return len(self.pattern)

    def block_at(self, index: int) -> Block:
        return self.blocks[self.pattern[index]]

    @property
    def blocks_in_order(self) -> tuple[Block, ...]:
        return tuple(self.blocks[name] for name in self.pattern)


Decoder = FixedDecoder | PatternDecoder
DECODER_TYPES: tuple[type, ...] = (FixedDecoder, PatternDecoder)

# ---------------------------------------------------------------- head and model


@frozen
class Head:
    """The language-model head.

    With ``prediction_heads`` P > 1 (multi-token prediction), the decoder's last block belongs
    to head 0: the trunk is blocks ``0 .. num_blocks - 2``, head 0 is the last block then
    ``final_norm``, and head k (1 <= k < P) is its own copy of the last block's configuration
    then its own final norm, reading the trunk output. All heads share the output projection.
    """

    final_norm: Normalization = arch()
    prediction_heads: int = arch(default=1, validator=count)


TokenIds = int | tuple[int, ...] | None


def _token_ids(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None or (type(value) is int and value >= 0):
        return
    if isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value):
        return
    raise ValueError(f"{attribute.name} must be a token id, a tuple of them, or None: {value!r}")


def _tuple_if_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _token_field() -> Any:
    return meta(default=None, converter=_tuple_if_list, validator=_token_ids)


@frozen
class Metadata:
    """What HF stores that is not architecture. ``None`` means "not stated by the source"."""

    context_length: int | None = meta(default=None, validator=_optional(_positive_int))
    bos_token_id: TokenIds = _token_field()
    eos_token_id: TokenIds = _token_field()
    pad_token_id: TokenIds = _token_field()
    mask_token_id: TokenIds = _token_field()
    dtype: str | None = meta(default=None)
    initializer_range: float | None = meta(default=None)
    attention_dropout: float | None = meta(default=None)
    use_cache: bool | None = meta(default=None)
    router_aux_loss_coef: float | None = meta(default=None)
    router_jitter_noise: float | None = meta(default=None)
    output_router_logits: bool | None = meta(default=None)


@frozen
class Model:
    """A decoder-only language model."""

    hidden_size: int = arch(validator=_positive_int)
    vocab_size: int = arch(validator=_positive_int)
    decoder: Decoder = arch()
    head: Head = arch()
    tied_embeddings: bool = arch(default=False, validator=_bool)
    metadata: Metadata = meta(factory=Metadata)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.decoder, DECODER_TYPES):
            raise ValueError(f"decoder must be a decoder class, got {self.decoder!r}")


UNION_MEMBERS: dict[Any, tuple[type, ...]] = {
    Rotary: ROTARY_TYPES,
    Normalization: NORMALIZATION_TYPES,
    FeedForward: FEED_FORWARD_TYPES,
    Decoder: DECODER_TYPES,
}
