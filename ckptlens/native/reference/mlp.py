"""MLP and mixture-of-experts forwards, with transformers' routing (softmax, top k)."""

from __future__ import annotations

import torch
from attrs import frozen
from torch.nn import functional

from ckptlens.native.nodes.mlp import (
    CORRECTION_BIAS,
    EXPERTS,
    LAYER_1,
    LAYER_2,
    MLP,
    ROUTER,
    SHARED,
    MoE,
)
from ckptlens.native.reference.dispatch import Tensors, forward, linear

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
            layer_1=tensors[f"{prefix}.{LAYER_1}.weight"],
            layer_2=tensors[f"{prefix}.{LAYER_2}.weight"],
            layer_1_bias=tensors[f"{prefix}.{LAYER_1}.bias"] if mlp.layer_1_bias else None,
            layer_2_bias=tensors[f"{prefix}.{LAYER_2}.bias"] if mlp.layer_2_bias else None,
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
    """Dense ``[..., experts]`` routing weights, zero for the experts not chosen (see
    ``Router``): scores, selection on the corrected scores within the best groups, weights
    from the uncorrected scores, renormalised when ``normalize_top_k``, times ``scale``."""
    router = moe.router
    logits = linear(x, tensors, f"{prefix}.{ROUTER}", router.bias)
    scores = logits.softmax(dim=-1) if router.scoring == "softmax" else logits.sigmoid()
    selection = scores
    if router.correction_bias:
        selection = scores + tensors[f"{prefix}.{ROUTER}.{CORRECTION_BIAS}"]
    if router.groups > 1:
        selection = _keep_best_groups(selection, router.groups, router.groups_per_token)
    chosen = selection.topk(moe.experts_per_token, dim=-1).indices
    weights = scores.gather(-1, chosen)
    if router.normalize_top_k:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter(-1, chosen, weights * router.scale)


def _keep_best_groups(selection: torch.Tensor, groups: int, keep: int) -> torch.Tensor:
    """``selection`` with every expert outside the ``keep`` best groups at -inf; a group
    scores the sum of its two best experts (DeepSeek-V3's ``noaux_tc``)."""
    grouped = selection.unflatten(-1, (groups, -1))
    group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
    best = group_scores.topk(keep, dim=-1).indices
    eligible = torch.zeros_like(group_scores, dtype=torch.bool).scatter(-1, best, True)
    return grouped.masked_fill(~eligible[..., None], float("-inf")).flatten(-2)


def moe_forward(x: torch.Tensor, moe: MoE, tensors: Tensors, prefix: str) -> torch.Tensor:
    routing = route(x, moe, tensors, prefix)
    experts = MLPWeights.read(moe.expert, tensors, f"{prefix}.{EXPERTS}")
    output = torch.zeros_like(x)
    for index in range(moe.experts):
        chosen = routing[..., index] != 0  # run each expert only on the tokens routed to it
        if chosen.any():
            expert_output = mlp_forward(x[chosen], moe.expert, experts.expert(index))
            output[chosen] += routing[..., index][chosen, None] * expert_output
    if moe.shared_expert is not None:
        shared = MLPWeights.read(moe.shared_expert, tensors, f"{prefix}.{SHARED}")
        output = output + mlp_forward(x, moe.shared_expert, shared)
    return output


@forward.register(MLP)
def _mlp(mlp: MLP, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    return mlp_forward(x, mlp, MLPWeights.read(mlp, tensors, prefix))


@forward.register(MoE)
def _moe(moe: MoE, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    return moe_forward(x, moe, tensors, prefix)
