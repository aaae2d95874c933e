"""The evaluation's memory plan: the KV cache has the dtype the plan assumes (checked on a tiny Llama through the same
k-bit preparation as the chapters), and the evaluation batch is the largest that fits the run's GPU."""

import pytest
import torch
from peft import prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from helpers.models import audit
from helpers.smoke import tiny_models


def cache_dtype(prepare: bool) -> torch.dtype:
    """The dtype of the keys a tiny fp16 Llama in 8-bit writes to its KV cache while generating."""
    model = AutoModelForCausalLM.from_pretrained(
        tiny_models.build("llama-2-chat"), quantization_config=BitsAndBytesConfig(load_in_8bit=True),
        dtype=torch.float16, device_map={"": "cpu"},
    )  # fmt: skip
    if prepare:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    seen = []
    model.model.layers[0].self_attn.k_proj.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    model.generate(torch.tensor([[1, 5, 6, 7]]), max_new_tokens=2, do_sample=False)
    return seen[-1]


def test_the_kv_cache_of_a_prepared_quantized_llm_is_fp32_as_the_plan_assumes():
    assert cache_dtype(prepare=True).itemsize == audit.KV_CACHE_BYTES == 4
    assert (
        cache_dtype(prepare=False) == torch.float16
    )  # the upcast is prepare_model_for_kbit_training's doing


def test_the_evaluation_batch_is_the_largest_that_fits_the_gpu():
    w, eight = audit.WORKLOADS["vivqa"], audit.setup_of("vivqa", 8)
    one, two = (audit.generation_memory(eight, w, b) for b in (1, 2))
    assert two["kv cache"] == pytest.approx(2 * one["kv cache"]) and two["weights"] == one["weights"]
    assert (
        audit.generation_memory(eight, w, 16)["total"] > audit.T4_USABLE_GIB
    )  # 16 prompts in 8-bit: too much
    assert audit.eval_batch("vivqa", 8) == 8 and audit.eval_batch("vivqa", 4) == 16  # on a T4
    assert audit.eval_batch("vivqa", 8, gpu_gib=79.0) == 16 and audit.eval_batch("vivqa", 8, None) == 16
    assert audit.eval_batch("vivqa", 8, gpu_gib=2.0) == 1  # nothing fits: one at a time, halving on OOM
