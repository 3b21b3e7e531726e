"""Tiny models for the semantic laws, drawn from a format's own domain.

A view drawn by ``strategies.sources_and_views`` keeps every architectural choice the format
can express (rotary type, activation spelling, biases, windows, layer pattern, tied head,
experts) but has real sizes (4096 wide, 32 layers). ``tiny_example`` redraws only the sizes, and
the numbers whose effect depends on size, so that a misreading changes the function:

- windows shorter than the sequence (mostly), rope original contexts shorter than it;
- GQA ratios above 1, top-k below the expert count, 1 to 3 layers, a layer pattern whose
  kinds switch strictly inside the layer count;
- epsilons and rope bases in a range where they matter at these sizes.

Equal numbers stay equal (a mirrored epsilon, a derived ``head_size`` or original context),
so derived fields stay consistent; the result must pass ``check_view`` and is written back
into the drawn source with ``put``, which keeps the source's presentation (aliases, v4 or v5
rope, absent defaults): the model built from it reads what a user's file would say.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from attrs import frozen
from hypothesis import assume
from hypothesis import strategies as st

from ckptlens.laws.strategies import sources_and_views
from ckptlens.lenses.core import Lens

MAX_LAYERS = 3
MAX_HIDDEN = 64
SEQ_LENGTHS = (8, 16)
THETAS = (10.0, 100.0, 10000.0, 1e6)
EPSILONS = (1e-6, 1e-5, 1e-3, 0.1)
FACTORS = (2.0, 4.0, 8.0)
BANDS = ((1.0, 4.0), (1.0, 2.0), (0.5, 3.0))
# LongRoPE factors: short ones near 1 and long ones larger, so that swapping them shows.
SHORT_FACTORS = (1.0, 1.1, 1.3, 1.6)
LONG_FACTORS = (2.0, 3.5, 6.0, 9.0)
YARN_KNOBS = (
    ("beta_fast", 4.0, 64.0, (32.0, 16.0)),
    ("beta_slow", 0.5, 4.0, (1.0, 2.0)),
    ("attention_factor", 0.1, 10.0, (0.8, 1.5)),
    ("mscale", 0.1, 10.0, (0.707, 1.0)),
    ("mscale_all_dim", 0.1, 10.0, (0.707, 1.0)),
)


@frozen
class TinyExample:
    """A tiny view, the drawn source it was written into (``put``), the sequence length and a
    seed for weights and tokens."""

    source: dict
    view: Any
    seq_len: int
    seed: int


Draw = Callable[[st.SearchStrategy[Any]], Any]


class _Sizes:
    """Redraws numbers consistently: one old value, one new value, per kind."""

    def __init__(self, draw: Draw, seq_len: int) -> None:
        self.draw = draw
        self.seq_len = seq_len
        self.memo: dict[tuple[str, Any], Any] = {}

    def new(self, kind: str, old: Any, strategy: st.SearchStrategy[Any]) -> Any:
        key = (kind, old)
        if key not in self.memo:
            self.memo[key] = self.draw(strategy)
        return self.memo[key]

    def window(self, old: int | None) -> int | None:
        if old is None:
            return None
        inside = st.integers(1, self.seq_len - 1)
        return self.new("window", old, st.one_of(inside, inside, inside, st.just(self.seq_len)))

    def context(self, old: int) -> int:
        """Context lengths (and rope original contexts) mostly shorter than the sequence."""
        short = st.integers(2, self.seq_len - 1)
        return self.new("context", old, st.one_of(short, short, short, st.integers(2, 64)))

    def keep_or(self, kind: str, old: Any, low: float, high: float, choices: tuple) -> Any:
        if isinstance(old, int | float) and low <= old <= high:
            return self.new(kind, old, st.sampled_from([old, old, *choices]))
        return self.new(kind, old, st.sampled_from(choices))


def _shrink_rotary(rotary: dict, sizes: _Sizes) -> None:
    if "theta" in rotary:
        rotary["theta"] = float(sizes.keep_or("theta", rotary["theta"], 2.0, 1e7, THETAS))
    if "factor" in rotary:
        rotary["factor"] = float(sizes.keep_or("factor", rotary["factor"], 0.25, 64.0, FACTORS))
    # YaRN's knobs, at values real configs use (extremes only probe float32 rounding).
    for name, low, high, choices in YARN_KNOBS:
        if rotary.get(name) is not None:
            rotary[name] = float(sizes.keep_or(name, rotary[name], low, high, choices))
    if "low_frequency_factor" in rotary:
        band = (rotary["low_frequency_factor"], rotary["high_frequency_factor"])
        if not 0.5 <= band[0] < band[1] <= 16:  # a band real configs use, inside the context
            band = sizes.new("band", band, st.sampled_from(BANDS))
        rotary["low_frequency_factor"], rotary["high_frequency_factor"] = band
    if "original_context_length" in rotary:
        rotary["original_context_length"] = sizes.context(rotary["original_context_length"])


def _fit_rotated_pairs(rotary: dict, sizes: _Sizes, head_size: int) -> None:
    """Partial rotary and LongRoPE at the new head size: a fraction that leaves an even
    number of rotated features (else the whole head), one factor per rotated pair."""
    fraction = rotary.get("fraction")
    if fraction is None:
        return
    rotated = int(head_size * fraction)
    if rotated < 2 or rotated % 2:
        rotary["fraction"] = fraction = 1.0
        rotated = head_size
    for key, choices in (("short_factor", SHORT_FACTORS), ("long_factor", LONG_FACTORS)):
        if key in rotary:
            old = tuple(rotary[key])
            rotary[key] = [
                sizes.new(key, (i, old), st.sampled_from(choices)) for i in range(rotated // 2)
            ]


def _shrink_norm(norm: dict, sizes: _Sizes) -> None:
    if "epsilon" in norm:
        norm["epsilon"] = sizes.keep_or("epsilon", norm["epsilon"], 1e-9, 1.0, EPSILONS)


def _shrink_mlp(mlp: dict, sizes: _Sizes) -> None:
    if mlp.get("type") == "moe":
        experts = sizes.new("experts", mlp["experts"], st.integers(2, 4))
        chosen = mlp["experts_per_token"]
        all_of_them = chosen >= mlp["experts"]
        mlp["experts_per_token"] = (
            experts if all_of_them else sizes.new("top_k", chosen, st.integers(1, experts - 1))
        )
        mlp["experts"] = experts
        if "router" in mlp:  # grouped routing needs groups dividing the experts: one group
            mlp["router"].update(groups=1, groups_per_token=1)
        _shrink_mlp(mlp["expert"], sizes)
        if mlp.get("shared_expert"):
            _shrink_mlp(mlp["shared_expert"], sizes)
        return
    size = mlp["intermediate_size"]
    mlp["intermediate_size"] = sizes.new("intermediate", size, st.integers(2, 24))


def _shrink_latent(mixer: dict, shape: dict[str, int]) -> None:
    """Latent attention: the drawn head count, every head part the drawn (even) head size."""
    mixer["heads"] = shape["heads"]
    for part in ("nope_head_size", "rope_head_size", "value_head_size"):
        mixer[part] = shape["head_size"]
    mixer["key_value_rank"] = 8
    if mixer.get("query_rank") is not None:
        mixer["query_rank"] = 12


def _shrink_block(block: dict, sizes: _Sizes, shape: dict[str, int]) -> None:
    mixer = block["mixer"]
    if mixer.get("type") == "latent_attention":
        _shrink_latent(mixer, shape)
        _shrink_rotary(mixer["rotary"], sizes)
        _shrink_norm(block["normalization"], sizes)
        _shrink_mlp(block["mlp"], sizes)
        return
    derived_size = mixer["head_size"] == shape["old_hidden"] // mixer["heads"]
    mixer["heads"], mixer["kv_heads"] = shape["heads"], shape["kv_heads"]
    mixer["head_size"] = (
        shape["head_size"] if not derived_size else shape["hidden"] // shape["heads"]
    )
    mixer["window"] = sizes.window(mixer.get("window"))
    _shrink_rotary(mixer["rotary"], sizes)
    _fit_rotated_pairs(mixer["rotary"], sizes, mixer["head_size"])
    _shrink_norm(block["normalization"], sizes)
    _shrink_mlp(block["mlp"], sizes)


def _shape(draw: Draw, old_hidden: int) -> dict[str, int]:
    heads = draw(st.sampled_from([1, 2, 4]))
    kv_heads = draw(st.sampled_from([d for d in (1, 2, 4) if heads % d == 0 and d < heads] or [1]))
    kv_heads = draw(st.sampled_from([kv_heads, kv_heads, heads]))  # GQA above 1 mostly
    # No head size 2: transformers' dynamic NTK rope divides by head_dim - 2.
    # Head size 4 hides a wrong rotary order (its interleaving is its own inverse): mostly 8.
    derived_head = draw(st.sampled_from([4, 8, 8]))
    head_size = draw(st.sampled_from([4, 6, 8, 8]))
    hidden = heads * derived_head
    return {
        "old_hidden": old_hidden,
        "heads": heads,
        "kv_heads": kv_heads,
        "head_size": head_size,
        "hidden": hidden,
    }


def _patterns(draw: Draw, old: list[str]) -> list[list[str]]:
    """Candidate short patterns with every name of ``old``: contiguous runs in the order the
    names first appear (the kind switches strictly inside), a shuffle, and ``old``'s prefix."""
    names = list(dict.fromkeys(old))
    length = draw(st.integers(len(names), max(len(names), MAX_LAYERS)))
    cuts = (
        sorted(
            draw(
                st.lists(
                    st.integers(1, length - 1),
                    min_size=len(names) - 1,
                    max_size=len(names) - 1,
                    unique=True,
                )
            )
        )
        if len(names) > 1
        else []
    )
    bounds = [0, *cuts, length]
    runs = [
        name for index, name in enumerate(names) for _ in range(bounds[index + 1] - bounds[index])
    ]
    shuffled = draw(st.permutations(runs))
    prefix = next(
        (old[:n] for n in range(len(names), len(old) + 1) if set(old[:n]) == set(names)), old
    )
    return [runs, list(shuffled), prefix[: max(len(prefix), 1)]]


def shrink_view(data: dict, draw: Draw, seq_len: int) -> list[dict]:
    """Tiny candidates of an unstructured native view (the first valid one is used)."""
    sizes = _Sizes(draw, seq_len)
    decoder = data["decoder"]
    blocks = list(decoder["blocks"].values()) if "blocks" in decoder else [decoder["block"]]
    shape = _shape(draw, data["hidden_size"])
    explicit_heads = any(
        b["mixer"].get("head_size") != data["hidden_size"] // b["mixer"]["heads"] for b in blocks
    )
    if explicit_heads:  # hidden_size is free of the head size: any multiple of the heads
        shape["hidden"] = shape["heads"] * draw(st.integers(1, MAX_HIDDEN // shape["heads"]))
    for block in blocks:
        _shrink_block(block, sizes, shape)
    data["hidden_size"] = shape["hidden"]
    data["vocab_size"] = draw(st.integers(16, 128))
    _shrink_norm(data["head"]["final_norm"], sizes)
    metadata = data.get("metadata", {})
    if metadata.get("context_length") is not None:
        metadata["context_length"] = sizes.context(metadata["context_length"])
    if metadata.get("pad_token_id") is not None:  # an embedding row: must be in the vocabulary
        metadata["pad_token_id"] = draw(st.integers(0, data["vocab_size"] - 1))
    if "pattern" not in decoder:
        decoder["num_blocks"] = draw(st.integers(1, MAX_LAYERS))
        return [data]
    candidates = []
    for pattern in _patterns(draw, list(decoder["pattern"])):
        candidates.append({**data, "decoder": {**decoder, "pattern": pattern}})
    return candidates


def _rotaries(data: dict) -> list[dict]:
    decoder = data["decoder"]
    blocks = list(decoder["blocks"].values()) if "blocks" in decoder else [decoder["block"]]
    return [block["mixer"]["rotary"] for block in blocks]


def with_yarn_mscales(data: dict, draw: Draw) -> dict | None:
    """``data`` with YaRN's ``mscale`` and ``mscale_all_dim`` both set (the only case where
    they change the function: their ratio is the attention factor), or ``None`` when there is
    nothing to fill. Formats whose YaRN has no such keys refuse it; the plain candidate is next.
    """
    unset = ("attention_factor", "mscale", "mscale_all_dim")
    targets = [r for r in _rotaries(data) if r.get("type") == "yarn"]
    if not targets or any(r.get(name) is not None for r in targets for name in unset):
        return None
    if not draw(st.booleans()):
        return None
    mscale, all_dim = draw(st.sampled_from([(1.0, 0.707), (0.707, 1.0), (0.5, 1.0)]))
    filled = copy.deepcopy(data)
    for rotary in _rotaries(filled):
        if rotary.get("type") == "yarn":
            rotary["mscale"], rotary["mscale_all_dim"] = mscale, all_dim
    return filled


CHOICES = 3


def is_tiny(view: Any) -> bool:
    """Small enough to build and run in a fraction of a second."""
    blocks = _blocks(view)
    mlps = [getattr(b.mlp, "expert", b.mlp) for b in blocks]
    return (
        view.hidden_size <= MAX_HIDDEN
        and view.vocab_size <= 128
        and len(blocks) <= MAX_LAYERS
        and all(
            b.mixer.heads <= 8 and getattr(b.mixer, "head_size", 0) <= MAX_HIDDEN for b in blocks
        )
        and all(m.intermediate_size <= MAX_HIDDEN for m in mlps)
        and all(getattr(b.mlp, "experts", 0) <= 8 for b in blocks)
    )


def _reached(view: Any, seq_len: int) -> tuple[int, int]:
    example = TinyExample({}, view, seq_len, 0)
    return richness(view), sum(case.startswith("window <") for case in cases(example))


def restore_implicit(
    lens: Lens, source: dict, written: dict, view: Any, seq_len: int
) -> tuple[dict, Any]:
    """Leave implicit again each top-level key the drawn source left implicit and ``put``
    spelled out, when the model stays tiny and reaches the same cases: what the lens then
    reads is its own default for that key (``head_dim`` from the heads, say), which the
    model code must agree with."""
    for key in [k for k in written if k not in source]:
        trial = {k: v for k, v in written.items() if k != key}
        trial_view, problems = lens._get_checked(trial)
        if problems or not is_tiny(trial_view):
            continue
        now, before = _reached(trial_view, seq_len), _reached(view, seq_len)
        if all(a >= b for a, b in zip(now, before, strict=True)):
            written, view = trial, trial_view
    return written, view


def richness(view: Any) -> int:
    """How many function-changing features ``view`` has (sizes aside)."""
    blocks = _blocks(view)
    mixers = [block.mixer for block in blocks]
    features = [
        any(getattr(m, "window", None) is not None for m in mixers),
        len(set(getattr(view.decoder, "pattern", ()))) > 1,
        any(type(m.rotary).tag not in ("default", "none") for m in mixers),
        # the rope types with most keys to misread count twice
        any(type(m.rotary).tag in ("yarn", "llama3") for m in mixers),
        any(m.heads > getattr(m, "kv_heads", m.heads) for m in mixers),
        any(m.query_bias or m.key_value_bias or m.dense_bias for m in mixers),
        any(getattr(b.mlp, "experts_per_token", 0) < getattr(b.mlp, "experts", 0) for b in blocks),
        view.tied_embeddings,
    ]
    return sum(features)


def tiny_examples(
    lens: Lens, accept: Callable[[dict], bool] | None = None
) -> st.SearchStrategy[TinyExample]:
    """Tiny views in the domain of ``lens``, each written into a drawn source. ``accept``
    filters the written sources: the model code may be stricter than configs in the wild
    (transformers v5 refuses ``"initializer_range": 0``, an int), and such a source says
    nothing about what a key means."""
    from ckptlens.native.converter import structure, unstructure

    pairs = sources_and_views(lens)

    @st.composite
    def draw_one(draw: Draw) -> TinyExample:
        # Of a few drawn sources, the one whose view reaches the most cases where a
        # misreading shows (windows, layer patterns, scaled rope, top-k, biases, GQA...).
        drawn = draw(st.lists(pairs, min_size=CHOICES, max_size=CHOICES))
        source, view = max(drawn, key=lambda pair: richness(pair[1]))
        seq_len = draw(st.sampled_from(SEQ_LENGTHS))
        plain = shrink_view(unstructure(view), draw, seq_len)
        enriched = [with_yarn_mscales(candidate, draw) for candidate in plain]
        for candidate in [c for c in enriched if c is not None] + plain:
            try:
                tiny = structure(candidate, type(view))
            except Exception:  # a validator refused this combination: try the next
                continue
            if lens.check_view(tiny):
                continue
            written, tiny = restore_implicit(lens, source, lens.put(tiny, source), tiny, seq_len)
            if accept is not None and not accept(written):
                continue
            return TinyExample(written, tiny, seq_len, draw(st.integers(0, 2**31)))
        assume(False)
        raise AssertionError("unreachable")

    return draw_one()


def _blocks(view: Any) -> tuple[Any, ...]:
    return view.decoder.blocks_in_order


def _runs(pattern: tuple[str, ...]) -> int:
    return 1 + sum(a != b for a, b in itertools.pairwise(pattern))


def cases(example: TinyExample) -> list[str]:
    """The cases this example reaches where a misreading would change the function (the
    semantic laws count them per format, so a strategy that never reaches one shows)."""
    view, seq = example.view, example.seq_len
    blocks = _blocks(view)
    found = []
    mixers = [block.mixer for block in blocks]
    windows = [m.window for m in mixers if getattr(m, "window", None) is not None]
    if windows:
        found.append("window < sequence" if min(windows) < seq else "window >= sequence")
    pattern = getattr(view.decoder, "pattern", None)
    if pattern is not None and len(set(pattern)) > 1:
        contiguous = _runs(tuple(pattern)) == len(set(pattern))
        found.append("layer kinds switch inside (runs)" if contiguous else "layer kinds mixed")
    for rotary in {m.rotary for m in mixers}:
        tag = type(rotary).tag
        original = getattr(rotary, "original_context_length", None)
        if original is not None and original < seq:
            found.append(f"rope {tag} past original context")
        else:
            found.append(f"rope {tag}")
    epsilons = {b.normalization.epsilon for b in blocks if hasattr(b.normalization, "epsilon")}
    if epsilons - {1e-5, 1e-6}:
        found.append("epsilon not 1e-5/1e-6")
    spelled = example.source.get("hidden_act", example.source.get("hidden_activation"))
    found.append(f"activation {spelled!r}" if spelled is not None else "activation by default")
    found.append("tied head" if view.tied_embeddings else "untied head")
    if any(m.heads > getattr(m, "kv_heads", m.heads) for m in mixers):
        found.append("GQA ratio > 1")
    biases = any(m.query_bias or m.key_value_bias or m.dense_bias for m in mixers)
    for block in blocks:
        mlp = getattr(block.mlp, "expert", block.mlp)
        biases = biases or mlp.layer_1_bias or mlp.layer_2_bias
        if hasattr(block.mlp, "experts"):
            top_k = block.mlp.experts_per_token < block.mlp.experts
            found.append("MoE top-k < experts" if top_k else "MoE top-k = experts")
    found.append("biases on" if biases else "biases off")
    found.append("rope spelled v5" if "rope_parameters" in example.source else "rope spelled v4")
    return sorted(set(found))
