import pytest

from helpers.models import audit


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
