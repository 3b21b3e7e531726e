"""MTP-Llama, Diffusion-Llama and Dream against the schema facts of their remote code
(``shared/format-facts``): what their config classes write, and what their modeling runs."""

from __future__ import annotations

import pytest

from ckptlens import formats
from ckptlens.lenses import SourceError, same

# The Fast-LLM synthetic test configs, as transformers 4.57 saves them (facts §2 of each sheet).
LLAMA_KEYS = {
    "vocab_size": 384,
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 2048,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-05,
    "use_cache": True,
    "pad_token_id": None,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pretraining_tp": 1,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "dtype": "float32",
    "transformers_version": "4.57.1",
}
MTP = {
    **LLAMA_KEYS,
    "prediction_heads": 2,
    "model_type": "mtp_llama",
    "architectures": ["MTPLlamaForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration_mtp_llama.MTPLlamaConfig",
        "AutoModel": "modeling_mtp_llama.MTPLlamaModel",
        "AutoModelForCausalLM": "modeling_mtp_llama.MTPLlamaForCausalLM",
    },
}
DIFFUSION = {
    **LLAMA_KEYS,
    "use_cache": False,
    "mask_token_id": 131072,
    "model_type": "diffusion_llama",
    "architectures": ["DiffusionLlamaModel"],
    "auto_map": {
        "AutoConfig": "configuration_diffusion_llama.DiffusionLlamaConfig",
        "AutoModel": "modeling_diffusion_llama.DiffusionLlamaModel",
    },
    "rope_scaling": {
        "rope_type": "yarn",
        "factor": 8.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "original_max_position_embeddings": 8192,
        "attention_factor": None,
    },
}
DREAM = {
    "vocab_size": 384,
    "hidden_size": 256,
    "intermediate_size": 1024,
    "num_hidden_layers": 2,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-05,
    "use_cache": False,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "use_sliding_window": False,
    "sliding_window": None,
    "max_window_layers": 28,
    "attention_dropout": 0.0,
    "mask_token_id": 151666,
    "pad_token_id": None,
    "model_type": "dream",
    "architectures": ["DreamModel"],
    "auto_map": {
        "AutoConfig": "configuration_dream.DreamConfig",
        "AutoModel": "modeling_dream.DreamModel",
    },
}
SAMPLES = {"mtp_llama": MTP, "diffusion_llama": DIFFUSION, "dream": DREAM}


def v5(source: dict) -> dict:
    """What transformers 5.24 writes for these classes: ``rope_parameters`` next to the flat
    ``rope_theta`` (facts, "What is written on save")."""
    out = {key: value for key, value in source.items() if key != "rope_scaling"}
    out["rope_parameters"] = {"rope_theta": source["rope_theta"], "rope_type": "default"}
    out["rope_parameters"].update(source["rope_scaling"] or {})
    return out


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("generation", ["v4", "v5"])
def test_saved_configs_read_and_put_back(name: str, generation: str) -> None:
    source = SAMPLES[name] if generation == "v4" else v5(SAMPLES[name])
    fmt = formats.detect(source)
    assert fmt.name == name
    view = fmt.lens.get(source)
    assert same(fmt.lens.put(view, source), source)
    assert fmt.lens.get(v5(SAMPLES[name])) == fmt.lens.get(SAMPLES[name])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_create_writes_the_flat_theta_with_either_spelling(name: str) -> None:
    fmt = formats.get(name)
    view = fmt.lens.get(SAMPLES[name])
    fresh_v5 = fmt.lens.create(view)
    assert fresh_v5["rope_theta"] == fresh_v5["rope_parameters"]["rope_theta"]
    fresh_v4 = fmt.lens.create(view, generation="v4")
    assert "rope_parameters" not in fresh_v4 and "rope_theta" in fresh_v4
    assert fresh_v5["auto_map"] == SAMPLES[name]["auto_map"]
    assert fmt.lens.get(fresh_v5) == fmt.lens.get(fresh_v4) == view


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_disagreeing_thetas_are_refused_naming_both(name: str) -> None:
    # transformers 5.24 saves rope_parameters.rope_theta = 500000 next to the flat 10000.
    source = v5(SAMPLES[name])
    source["rope_parameters"]["rope_theta"] = 500000.0
    with pytest.raises(SourceError) as raised:
        formats.get(name).lens.get(source)
    (violation,) = raised.value.violations
    assert violation.path == "$.rope_theta"
    assert "500000.0" in violation.expected and violation.found == "10000.0"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_auto_map_pointing_at_other_code_is_refused(name: str) -> None:
    source = {**SAMPLES[name], "auto_map": {"AutoConfig": "configuration_x.XConfig"}}
    with pytest.raises(SourceError, match="auto_map"):
        formats.get(name).lens.get(source)


def test_mtp_layers_count_the_block_of_head_zero() -> None:
    view = formats.get("mtp_llama").lens.get(MTP)
    assert view.head.prediction_heads == 2
    assert view.decoder.num_blocks == 2  # L = 2: one trunk block, then head 0's block
    assert (
        formats.get("mtp_llama").lens.get({**MTP, "prediction_heads": 1}).head.prediction_heads == 1
    )
    into_llama = formats.get("llama").lens.check_view(view)
    assert [v.path for v in into_llama] == ["$.head.prediction_heads"]


@pytest.mark.parametrize("name", ["diffusion_llama", "dream"])
def test_diffusion_models_attend_both_ways(name: str) -> None:
    view = formats.get(name).lens.get(SAMPLES[name])
    assert view.decoder.block.mixer.causal is False


def test_diffusion_llama_defaults_and_rotary() -> None:
    fmt = formats.get("diffusion_llama")
    bare = {"model_type": "diffusion_llama"}
    view = fmt.lens.get(bare)
    assert (view.metadata.use_cache, view.metadata.mask_token_id) == (False, 131072)
    yarn = fmt.lens.get(DIFFUSION).decoder.block.mixer.rotary
    assert (yarn.tag, yarn.original_context_length, yarn.factor) == ("yarn", 8192, 8.0)
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}
    with pytest.raises(SourceError, match="rope type"):
        fmt.lens.get({**DIFFUSION, "rope_scaling": {**llama3, "high_freq_factor": 4.0}})
    no_original = {k: v for k, v in DIFFUSION["rope_scaling"].items() if "original" not in k}
    with pytest.raises(SourceError, match="original_max_position_embeddings"):
        fmt.lens.get({**DIFFUSION, "rope_scaling": no_original})
    with pytest.raises(SourceError, match="mscale"):
        fmt.lens.get({**DIFFUSION, "rope_scaling": {**DIFFUSION["rope_scaling"], "mscale": 1.0}})


def test_dream_is_a_qwen2_block_without_head_dim_or_window() -> None:
    fmt = formats.get("dream")
    view = fmt.lens.get(DREAM)
    mixer = view.decoder.block.mixer
    assert (mixer.query_bias, mixer.key_value_bias, mixer.dense_bias) == (True, True, False)
    assert mixer.head_size == 32 and mixer.window is None
    assert (view.metadata.mask_token_id, view.metadata.use_cache) == (151666, False)
    created = fmt.lens.create(view)
    assert "head_dim" not in created
    assert "bos_token_id" not in created and "eos_token_id" not in created  # not written
    with pytest.raises(SourceError, match="head_dim"):
        fmt.lens.get({**DREAM, "head_dim": 32})
    with pytest.raises(SourceError, match="use_sliding_window"):
        fmt.lens.get({**DREAM, "use_sliding_window": True, "sliding_window": 4096})
    with pytest.raises(SourceError, match="divisible"):
        fmt.lens.get({**DREAM, "hidden_size": 250})
