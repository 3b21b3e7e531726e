"""DeepSeek-V3 (``DeepseekV3ForCausalLM``): multi-head latent attention, dense first layers,
then a mixture of experts with grouped sigmoid routing and a shared expert.

Both published forms read: the remote-code config (``auto_map``, ``moe_layer_freq``,
``scoring_func``, ``topk_method``, ``ep_size``, v4 ``rope_scaling``) and what transformers 5.24
writes (``rope_parameters``, ``num_nextn_predict_layers``, derived ``head_dim``/``qk_head_dim``).
``num_nextn_predict_layers`` (multi-token prediction layers stored after the decoder in the
original checkpoint) and ``quantization_config`` are kept as they are, not shown.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.decoders import layer_windows
from ckptlens.formats.dense_prefix import DENSE_PREFIX
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.latent_blocks import DEEPSEEK_BLOCK
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.tables import hf_model
from ckptlens.lenses import constant

DEEPSEEK_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 4096,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "output_router_logits": False,
}
REMOTE_CODE = {
    "AutoConfig": "configuration_deepseek.DeepseekV3Config",
    "AutoModel": "modeling_deepseek.DeepseekV3Model",
    "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM",
}

tree = hf_model(
    "deepseek_v3",
    ["DeepseekV3ForCausalLM"],
    decoder=layer_windows(DEEPSEEK_BLOCK, DENSE_PREFIX),
    metadata=metadata(DEEPSEEK_METADATA),
    extra=[
        # ``ep_size`` (expert parallelism), ``pretraining_tp``, the R1-era training knobs and
        # the MTP layer count change nothing transformers computes; FP8 storage is a weights
        # matter (its quantizer reads ``quantization_config``).
        generic_keys(
            "ep_size",
            "pretraining_tp",
            "aux_loss_alpha",
            "seq_aux",
            "num_nextn_predict_layers",
            "quantization_config",
        ),
        constant("auto_map", REMOTE_CODE, create=False),
        # The remote code makes every ``moe_layer_freq``-th layer MoE; transformers ignores the
        # key, so only 1 means the same model in both.
        constant("moe_layer_freq", 1, create=False),
    ],
    defaults={"vocab_size": 129280, "hidden_size": 7168},
)
WEIGHTS = hf.decoder(
    "model.layers.{i}",
    mixer=hf.latent_attention("self_attn"),
    mlp=(hf.mlp(), hf.QWEN2_MOE),
)
FORMAT = declare(
    "deepseek_v3", tree, ("DeepseekV3ForCausalLM",), weights=WEIGHTS, peer="DeepseekV3Config"
)
lens = FORMAT.lens
