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
