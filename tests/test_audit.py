import pytest

from helpers.models import architectures, audit


def test_blip2_seed_printout_exact():
    assert audit.blip2_lora_printout() == (
        "trainable params: 5,242,880 || all params: 3,749,922,816 || trainable%: 0.1398"
    )


def test_memory_plan_is_labelled_and_checkpointing_saves_memory():
    table = audit.memory_plan_table()
    assert "ESTIMATE" in table and "Estimate only" in table
    for setup in audit.full_profile_setups():
        plain, ckpt = audit.memory_estimate(setup, False), audit.memory_estimate(setup, True)
        assert ckpt["activations"] < plain["activations"]
        assert ckpt["total"] < audit.T4_MEMORY_GB, setup.name
    eight, four = [s for s in audit.full_profile_setups() if s.name.startswith("05/06")]
    assert audit.memory_estimate(four, True)["weights"] < audit.memory_estimate(eight, True)["weights"]


def test_a_plan_in_bits_no_run_of_the_chapter_uses_is_refused():
    assert audit.setup_of("vivqa", 4).weight_bits == 4  # MiniGPT-v2 has a 4-bit and an 8-bit plan
    with pytest.raises(ValueError, match="no 4-bit plan for captioning: its runs are 8-bit"):
        audit.setup_of("captioning", 4)


def test_qwen_plan_counts_its_lora_from_the_published_shapes_and_stays_in_fp16():
    text = architectures.QWEN3_VL_2B["text_config"]
    q_out, v_out = (
        text["num_attention_heads"] * text["head_dim"],
        text["num_key_value_heads"] * text["head_dim"],
    )
    lora_per_layer = 16 * (text["hidden_size"] + q_out) + 16 * (text["hidden_size"] + v_out)  # r16 A and B
    setup = audit.setup_of("qwen-vivqa")
    assert setup.trainable_params == lora_per_layer * text["num_hidden_layers"]
    assert setup.weight_bits == 16 and setup.fp32_frozen_params == 0
    # every weight once: the tied output layer is the embedding matrix, counted with the LLM's matmuls
    assert setup.quantized_params > text["vocab_size"] * text["hidden_size"] > 0
    assert audit.t4_bits("qwen-vivqa", "reproduce") == 16 and audit.t4_bits("vivqa", "reproduce") == 8
    with pytest.raises(ValueError, match="no 8-bit plan for qwen-vivqa: its runs are 16-bit"):
        audit.setup_of("qwen-vivqa", 8)
