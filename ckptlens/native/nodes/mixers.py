"""The mixer union: every node that mixes information across positions. A new mixer is its
own module in this package plus one member here."""

from __future__ import annotations

from ckptlens.native.nodes.attention import Attention
from ckptlens.native.nodes.fields import union
from ckptlens.native.nodes.latent_attention import LatentAttention

Mixer = union(Attention, LatentAttention)
