"""The law suite of DESIGN.md for every format of the Llama family (``CKPTLENS_PROFILE`` picks
the example count: ``dev`` by default, ``ci`` for at least 200 per law)."""

from __future__ import annotations

from ckptlens import formats
from ckptlens.laws.plugin import law_tests

test_mistral_laws = law_tests(formats.get("mistral"))
test_qwen2_laws = law_tests(formats.get("qwen2"))
test_mixtral_laws = law_tests(formats.get("mixtral"))
test_mtp_llama_laws = law_tests(formats.get("mtp_llama"))
test_diffusion_llama_laws = law_tests(formats.get("diffusion_llama"))
test_dream_laws = law_tests(formats.get("dream"))
test_deepseek_v3_laws = law_tests(formats.get("deepseek_v3"))
test_phi3_laws = law_tests(formats.get("phi3"))
test_qwen3_laws = law_tests(formats.get("qwen3"))
test_olmo2_laws = law_tests(formats.get("olmo2"))
test_gemma2_laws = law_tests(formats.get("gemma2"))
