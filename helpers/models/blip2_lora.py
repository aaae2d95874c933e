"""BLIP-2 in 8-bit with the BLIP-2 food report's LoRA: notebook 03 §4's calls, for the smoke check and appendix A2."""

from __future__ import annotations

import copy

from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import BitsAndBytesConfig, Blip2ForConditionalGeneration, Blip2Processor

from helpers import runtime
from helpers.models import audit
from helpers.models.checkpointing import enable_activation_checkpointing


def load_blip2_with_lora(
    profile: runtime.Profile,
    recipe: runtime.Recipe,
    source: str | None = None,
    quantization_config: BitsAndBytesConfig | None = None,
) -> tuple[PeftModel, Blip2Processor]:
    """The model and processor as notebook 03 §4 loads them, on this process's own device (`runtime.device_map`):
    from `profile.model("blip2")` in 8-bit, unless another `source` folder or `quantization_config` is given."""
    source = source or profile.model("blip2")
    _, dtype = runtime.pick_device_dtype()
    model = Blip2ForConditionalGeneration.from_pretrained(
        source,
        quantization_config=quantization_config
        or BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0),
        device_map=runtime.device_map(),
        dtype=dtype,
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    enable_activation_checkpointing(model)
    model.config.get_text_config().use_cache = False
    lora = copy.deepcopy(audit.BLIP2_REPORT_LORA)
    lora.modules_to_save = list(recipe.modules_to_save) or None
    return get_peft_model(model, lora), Blip2Processor.from_pretrained(source)
