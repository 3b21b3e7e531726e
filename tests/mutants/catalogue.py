"""Injected bugs for measuring what ``ckptlens check`` catches on its own.

Each mutant is one realistic slip: a file of the package, exact text to find (it must occur
exactly once), its replacement, the kind of bug, and the formats whose check should see it.
``run.py`` applies one mutant at a time to a copy of the package and runs ``ckptlens check``.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class Mutant:
    name: str
    kind: str
    formats: tuple[str, ...]
    edits: tuple[tuple[str, str, str], ...]  # (file under ckptlens/, search, replacement)


def one(name: str, kind: str, fmt: str, path: str, search: str, replace: str) -> Mutant:
    return Mutant(name, kind, (fmt,), ((path, search, replace),))


SAME_BOTH_SIDES = "config misread, same on both sides"
DEFAULT = "wrong default"
WINDOW_ROPE = "window or rope slip"
WEIGHT_ONE_WAY = "weight-op slip, one direction"
WEIGHT_MEANING = "weight naming slip, both directions"
ACTIVATION = "activation alias"
METADATA = "metadata misread, same on both sides"
WRITER = "shard writer"

LOW_HIGH = (
    'field("low_frequency_factor", "low_freq_factor", EPSILON),\n'
    '            field("high_frequency_factor", "high_freq_factor", EPSILON),'
)
MSCALES = (
    '_optional_float("mscale", "mscale"),\n'
    '            _optional_float("mscale_all_dim", "mscale_all_dim"),'
)
YARN_KEYS = (
    '_optional_float("attention_factor", "attention_factor"),\n'
    '        _optional_float("beta_fast", "beta_fast"),'
)
BOS_EOS = (
    '"bos_token_id": ("bos_token_id", Nullable(Int(minimum=0))),\n'
    '    "eos_token_id": ("eos_token_id", Nullable(TokenIds())),'
)

MUTANTS: tuple[Mutant, ...] = (
    one(
        "gelu_new read as exact gelu",
        ACTIVATION,
        "llama",
        "formats/hf.py",
        '"gelu_new": "gelu_pytorch_tanh"',
        '"gelu_new": "gelu"',
    ),
    one(
        "swish read as relu",
        ACTIVATION,
        "llama",
        "formats/hf.py",
        '"swish": "silu"',
        '"swish": "relu"',
    ),
    one(
        "gelu read as its tanh neighbour",
        ACTIVATION,
        "llama",
        "formats/hf.py",
        '{"silu": "silu", "gelu": "gelu",',
        '{"silu": "silu", "gelu": "gelu_tanh",',
    ),
    Mutant(
        "max_window_layers off by one (read and write)",
        WINDOW_ROPE,
        ("qwen2",),
        (
            ("formats/windows.py", "sliding and i >= first", "sliding and i > first"),
            (
                "formats/windows.py",
                '"max_window_layers": layout.first_sliding if sliding',
                '"max_window_layers": layout.first_sliding - 1 if sliding',
            ),
            (
                "formats/windows.py",
                'yield {**base, "max_window_layers": layout.first_sliding}',
                'yield {**base, "max_window_layers": layout.first_sliding - 1}',
            ),
        ),
    ),
    one(
        "sliding window read as absent by default",
        DEFAULT,
        "mistral",
        "formats/mistral.py",
        "window=sliding_window(default=4096)",
        "window=sliding_window(default=None)",
    ),
    one(
        "Llama-3 band factors swapped",
        WINDOW_ROPE,
        "llama",
        "formats/rope.py",
        LOW_HIGH,
        LOW_HIGH.replace('"low_freq_factor"', '"X"')
        .replace('"high_freq_factor"', '"low_freq_factor"')
        .replace('"X"', '"high_freq_factor"'),
    ),
    one(
        "YaRN mscale keys swapped",
        WINDOW_ROPE,
        "llama",
        "formats/rope.py",
        MSCALES,
        MSCALES.replace('"mscale")', '"X")')
        .replace('"mscale_all_dim")', '"mscale")')
        .replace('"X")', '"mscale_all_dim")'),
    ),
    one(
        "YaRN attention_factor and beta_fast keys swapped",
        WINDOW_ROPE,
        "llama",
        "formats/rope.py",
        YARN_KEYS,
        YARN_KEYS.replace('"attention_factor")', '"X")')
        .replace('"beta_fast")', '"attention_factor")')
        .replace('"X")', '"beta_fast")'),
    ),
    one(
        "rope theta default 1e6",
        DEFAULT,
        "llama",
        "formats/rope.py",
        "DEFAULT_THETA = 10000.0",
        "DEFAULT_THETA = 1000000.0",
    ),
    one(
        "rms_norm_eps default 1e-5",
        DEFAULT,
        "llama",
        "formats/tables.py",
        "field(epsilon, epsilon_key, EPSILON, default=1e-6),",
        "field(epsilon, epsilon_key, EPSILON, default=1e-5),",
    ),
    one(
        "block norm epsilon not mirrored",
        SAME_BOTH_SIDES,
        "qwen2",
        "formats/decoders.py",
        "return [mirror(place.path(epsilon), FINAL_EPSILON, text) for epsilon in block.epsilons]",
        'pinned = __import__("ckptlens.lenses", fromlist=["pinned"]).pinned\n'
        "    return [pinned(place.path(epsilon), 1e-6, text) for epsilon in block.epsilons]",
    ),
    one(
        "router without top-k renormalisation",
        SAME_BOTH_SIDES,
        "mixtral",
        "formats/mixtral.py",
        '{"normalize_top_k": True, "bias": False}',
        '{"normalize_top_k": False, "bias": False}',
    ),
    one(
        "experts per token default 1",
        DEFAULT,
        "mixtral",
        "formats/blocks.py",
        '"num_experts_per_tok", POSITIVE, default=2',
        '"num_experts_per_tok", POSITIVE, default=1',
    ),
    one(
        "bos and eos token ids swapped",
        METADATA,
        "llama",
        "formats/hf.py",
        BOS_EOS,
        BOS_EOS.replace('("bos_token_id"', '("X"')
        .replace('("eos_token_id"', '("bos_token_id"')
        .replace('("X"', '("eos_token_id"'),
    ),
    one(
        "initializer_range and attention_dropout swapped",
        METADATA,
        "llama",
        "formats/hf.py",
        '"initializer_range": ("initializer_range", Float(nonnegative=True, maximum=1.0)),\n'
        '    "attention_dropout": ("attention_dropout", NON_NEGATIVE),',
        '"initializer_range": ("attention_dropout", Float(nonnegative=True, maximum=1.0)),\n'
        '    "attention_dropout": ("initializer_range", NON_NEGATIVE),',
    ),
    one(
        "context length default 4096",
        DEFAULT,
        "llama",
        "formats/llama.py",
        '"context_length": 2048,',
        '"context_length": 4096,',
    ),
    one(
        "initializer_range default 0.01",
        DEFAULT,
        "llama",
        "formats/llama.py",
        '"initializer_range": 0.02,',
        '"initializer_range": 0.01,',
    ),
    one(
        "qwen2 q_proj bias read as absent",
        SAME_BOTH_SIDES,
        "qwen2",
        "formats/blocks.py",
        'pinned(f"{mixer}.query_bias", True,',
        'pinned(f"{mixer}.query_bias", False,',
    ),
    one(
        "tied embeddings by default",
        DEFAULT,
        "llama",
        "formats/tables.py",
        '"tie_word_embeddings", Bool(), default=False',
        '"tie_word_embeddings", Bool(), default=True',
    ),
    one(
        "head_dim default from kv heads",
        DEFAULT,
        "llama",
        "formats/blocks.py",
        'lambda view: view("hidden_size") // view(heads),',
        'lambda view: view("hidden_size") // view(heads.replace("heads", "kv_heads")),',
    ),
    one(
        "mistral kv heads default 4",
        DEFAULT,
        "mistral",
        "formats/mistral.py",
        '"num_key_value_heads": 8}',
        '"num_key_value_heads": 4}',
    ),
    one(
        "rotary permutation wrong in one direction",
        WEIGHT_ONE_WAY,
        "llama",
        "weights/ops.py",
        "grouped = (self.heads, 2, half) if self.to_interleaved else (self.heads, half, 2)",
        "grouped = (self.heads, half, 2) if self.to_interleaved else (self.heads, half, 2)",
    ),
    one(
        "split pieces reversed (one direction)",
        WEIGHT_ONE_WAY,
        "llama",
        "weights/ops.py",
        "return list(np.split(arrays[0], cuts, axis=self.dim))",
        "return list(np.split(arrays[0], cuts, axis=self.dim))[::-1]",
    ),
    one(
        "unstack experts reversed (one direction)",
        WEIGHT_ONE_WAY,
        "mixtral",
        "weights/ops.py",
        "return [arrays[0][index] for index in range(self.count)]",
        "return [arrays[0][index] for index in reversed(range(self.count))]",
    ),
    one(
        "k and v projections swapped",
        WEIGHT_MEANING,
        "llama",
        "formats/hf_weights/attention.py",
        'kv = (f"{hf}.{self.key}.{suffix}", f"{hf}.{self.value}.{suffix}")',
        'kv = (f"{hf}.{self.value}.{suffix}", f"{hf}.{self.key}.{suffix}")',
    ),
    one(
        "gate and up swapped",
        WEIGHT_MEANING,
        "llama",
        "formats/hf_weights/mlp.py",
        'external = (f"{hf}.{self.gate}.{suffix}", f"{hf}.{self.up}.{suffix}")',
        'external = (f"{hf}.{self.up}.{suffix}", f"{hf}.{self.gate}.{suffix}")',
    ),
    one(
        "shard packing boundary >=",
        WRITER,
        "llama",
        "weights/writer.py",
        "used + size > max_shard_bytes",
        "used + size >= max_shard_bytes",
    ),
)
