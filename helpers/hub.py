"""Cards computed from what they describe, and the one private upload of adapters (02 §9 shows the dataset's)."""

from __future__ import annotations

from collections.abc import Mapping

from huggingface_hub import ModelCard
from peft import PeftModel
from transformers.utils import PushToHubMixin

from helpers import runtime


def weight_format(model: PeftModel) -> str:
    """How the frozen base is stored, read from its quantization config: '8-bit LLM.int8', '4-bit nf4' or 'fp32'."""
    base = model.get_base_model()
    quantizer = getattr(
        base, "hf_quantizer", None
    )  # MiniGPT-v2 mirrors its LLM's quantizer (only the LLM is quantized)
    config = (
        quantizer.quantization_config
        if quantizer is not None
        else getattr(base.config, "quantization_config", None)
    )
    settings = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    if settings.get("load_in_8bit"):
        return "8-bit LLM.int8"
    if settings.get("load_in_4bit"):
        return f"4-bit {settings.get('bnb_4bit_quant_type', 'fp4')}"
    return str(base.dtype).removeprefix("torch.")


def adapter_card(model: PeftModel, title: str, data: str, revisions: Mapping[str, str]) -> str:
    """A short model card whose numbers (LoRA settings, trainable and total parameters, bits) come from `model`, with
    the commit of every Hub repo the base was loaded from (`revisions`: repo id -> commit, `Profile.revision`)."""
    trainable, total = model.get_nb_trainable_parameters()
    lora = model.peft_config[model.active_adapter]
    base = model.get_base_model()
    base = base.name_or_path or getattr(getattr(base, "language_model", None), "name_or_path", "")
    regex = isinstance(lora.target_modules, str)
    targets = f"modules matching {lora.target_modules}" if regex else ", ".join(sorted(lora.target_modules))
    lines = [
        "---", f"base_model: {base}", "library_name: peft", "language: [en, vi]", "tags: [lora]", "---",
        f"# {title}",
        f"LoRA r={lora.r}, alpha={lora.lora_alpha}, dropout {lora.lora_dropout} on {targets}: {trainable:,} trainable"
        f" of {total:,} parameters ({100 * trainable / total:.4f}%); base weights {weight_format(model)}.",
        f"Data: {data}",
        "Base weights: " + ", ".join(f"`{repo}` at commit `{commit}`" for repo, commit in revisions.items()) + ".",
    ]  # fmt: skip
    return "\n\n".join(lines) + "\n"


def push(profile: runtime.Profile, adapter: PushToHubMixin, card: ModelCard, repo_name: str) -> str | None:
    """Uploads an adapter privately with its card when a token is present (full profile), else says why not: the
    calls notebook 02 §9 shows for the dataset."""
    target = runtime.hub_upload_target(profile, repo_name)
    if target is None:
        return None
    repo_id, token = target
    adapter.push_to_hub(repo_id, token=token, private=True)
    api = runtime.hub_api()
    # Through the one Hub client, not card.push_to_hub: huggingface_hub 1.x (Colab's) validates a card against
    # huggingface.co itself, whatever HF_ENDPOINT says.
    api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md", repo_id=repo_id,
                    token=token, commit_message="Add the card")  # fmt: skip
    print(f"pushed (private): {api.endpoint}/{repo_id}")
    return repo_id
