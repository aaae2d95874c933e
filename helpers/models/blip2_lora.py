"""BLIP-2 in 8-bit with the BLIP-2 food report's LoRA: notebook 03 §4's calls, for the smoke check and appendix A2."""

from __future__ import annotations

from peft import PeftModel, get_peft_model
from transformers import BitsAndBytesConfig, Blip2ForConditionalGeneration, Blip2Processor

from helpers import runtime
from helpers.chapters.blip2_lora_captioning import caption_lora_config, prepare_for_lora


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
    lora = caption_lora_config(recipe.modules_to_save)
    return get_peft_model(prepare_for_lora(model), lora), Blip2Processor.from_pretrained(source)
