"""The released MiniGPT-v2 stage-3 checkpoint: download, verify, map peft-0.2.0 names, load strictly.

Fine-tuned weights are saved and reloaded with peft itself: `save_pretrained` writes only the LoRA and llama_proj.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoTokenizer, PreTrainedTokenizerBase
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

from helpers import runtime
from helpers.bad_input import BadInput
from helpers.chapters.minigpt_v2_vivqa import attach_lora, llm_quantization_config
from helpers.data import downloads
from helpers.models.minigpt_v2 import MiniGPTv2ForConditionalGeneration
from helpers.models.minigpt_v2_prompts import make_image_processor

STAGE3_DRIVE_ID = "1HkoUUrjzFGn33cSiUkI-KcT-zysCynAz"
STAGE3_FILENAME = "checkpoint_stage3.pth"
# peft 0.2.0 names as saved by the original runner: no `.default.` adapter segment.
_OFFICIAL_LORA = re.compile(
    r"llama_model\.base_model\.model\.(model\.layers\.\d+\.self_attn\.(?:q_proj|v_proj)\.lora_[AB])\.weight"
)
_OFFICIAL_PROJ = re.compile(r"llama_proj\.(weight|bias)")
# Non-learned rotary buffers that transformers 4.30 kept in state_dict; today's Llama recomputes them.
_ROTARY_BUFFER = re.compile(r".*\.rotary_emb\.inv_freq")
SMOKE_IMAGE_SIZE = 32  # the tiny tower is trained at 16 px; run at twice that, like 224 -> 448 px


def download_stage3_checkpoint(destination: Path) -> Path:
    """Fetch checkpoint_stage3.pth from Google Drive with gdown (skipped when a verified copy is there)."""
    return downloads.gdown_file(STAGE3_DRIVE_ID, destination, _check_stage3)


def _check_stage3(path: Path) -> None:
    """A whole torch.save archive (a zip holding its data.pkl); a Drive page or a cut download is neither."""
    if not zipfile.is_zipfile(path):
        raise BadInput("not a torch file (a Drive quota or error page is HTML)")
    with zipfile.ZipFile(path) as archive:
        if not any(name.endswith("/data.pkl") for name in archive.namelist()):
            raise BadInput("a zip archive, but not one torch.save wrote")


def read_official_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The `model` state dict of an original MiniGPT-v2 checkpoint, read with torch.load(weights_only=True)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, OSError) as error:
        head = Path(path).read_bytes()[:64].lstrip().lower() if Path(path).is_file() else b""
        hint = (
            " (it starts like an HTML page: a Drive error or quota page, not the checkpoint)"
            if head.startswith((b"<!doctype html", b"<html"))
            else ""
        )
        raise BadInput(f"{path}: not a PyTorch checkpoint{hint} ({type(error).__name__}: {error})") from error
    state_dict = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise BadInput(f"{path}: expected {{'model': state_dict}} of tensors")
    return state_dict


def official_to_peft_names(state_dict: dict[str, torch.Tensor]) -> tuple[dict, list, list]:
    """Rename official keys to the peft-wrapped model's; returns (renamed, unexpected keys, ignored rotary buffers)."""
    renamed, unexpected, ignored = {}, [], []
    for key, tensor in state_dict.items():
        if match := _OFFICIAL_LORA.fullmatch(key):
            renamed[f"base_model.model.language_model.{match[1]}.default.weight"] = tensor
        elif match := _OFFICIAL_PROJ.fullmatch(key):
            renamed[f"base_model.model.llama_proj.modules_to_save.default.{match[1]}"] = tensor
        elif _ROTARY_BUFFER.fullmatch(key):
            ignored.append(key)
        else:
            unexpected.append(key)
    return renamed, unexpected, ignored


@dataclass
class LoadReport:
    """What load_official_checkpoint loaded."""

    lora: int
    projection: int
    ignored_buffers: int

    def __str__(self) -> str:
        return (
            f"{self.lora + self.projection} tensors loaded ({self.lora} LoRA, {self.projection} llama_proj),"
            f" 0 missing, 0 unexpected, {self.ignored_buffers} rotary buffers ignored (recomputed by transformers)"
        )


def load_official_checkpoint(model: PeftModel, source: str | Path | dict[str, torch.Tensor]) -> LoadReport:
    """Load an original-format checkpoint (file or state dict) into a model from attach_lora; any missing LoRA or
    llama_proj tensor, or unexpected or reshaped one, raises with counts and loads nothing. Layers trained beyond the
    original's (smoke's `lm_head`) keep the base model's weights."""
    state_dict = source if isinstance(source, dict) else read_official_state_dict(Path(source))
    origin = "the state dict" if isinstance(source, dict) else str(source)
    renamed, unexpected, ignored = official_to_peft_names(state_dict)
    trainable = {name: param for name, param in model.named_parameters() if param.requires_grad}
    # What the original trains (and saves): LoRA and llama_proj; other trainable layers keep their base weights.
    missing = sorted(
        name for name in set(trainable) - set(renamed) if ".lora_" in name or ".llama_proj." in name
    )
    unexpected += sorted(set(renamed) - set(trainable))
    mismatched = [
        f"{name} {tuple(renamed[name].shape)} vs {tuple(trainable[name].shape)}"
        for name in set(renamed) & set(trainable)
        if renamed[name].shape != trainable[name].shape
    ]
    if missing or unexpected or mismatched:
        raise BadInput(
            f"{origin} does not match the model: {len(state_dict)} tensors in the checkpoint,"
            f" {len(trainable)} trainable tensors in the model; {len(missing)} missing {missing[:3]},"
            f" {len(unexpected)} unexpected {unexpected[:3]}, {len(mismatched)} with other shapes {mismatched[:3]}"
        )
    with torch.no_grad():
        for name, tensor in renamed.items():
            trainable[name].copy_(tensor)
    projection = sum(1 for name in renamed if ".llama_proj." in name)
    return LoadReport(lora=len(renamed) - projection, projection=projection, ignored_buffers=len(ignored))


def load_base(
    profile: runtime.Profile, bits: int = 8, vision: str | None = None, llm: str | None = None
) -> tuple[MiniGPTv2ForConditionalGeneration, PreTrainedTokenizerBase, BlipImageProcessorPil]:
    """MiniGPT-v2 without adapters (notebook 05 §3's calls): BLIP-2's ViT + Llama-2-7b-chat in `bits` (smoke: the
    tiny models of the same classes; `vision` and `llm` name other folders), its tokenizer and image processor."""
    _, dtype = runtime.pick_device_dtype()
    llm, token = llm or profile.model("llama-2-chat"), runtime.hf_token()
    image_size = SMOKE_IMAGE_SIZE if profile.is_smoke else 448
    model = MiniGPTv2ForConditionalGeneration.from_vision_and_llm_pretrained(
        vision or profile.model("minigpt-vision"),
        llm,
        image_size=image_size,
        quantization_config=llm_quantization_config(bits, compute_dtype=dtype),
        device_map=runtime.device_map(),
        dtype=dtype,
        token=token,
    )
    return model, AutoTokenizer.from_pretrained(llm, token=token), make_image_processor(image_size)


def load_stage3_model(
    profile: runtime.Profile,
    bits: int = 8,
    gradient_checkpointing: bool = False,
    extra_trained: Sequence[str] = (),
) -> tuple[PeftModel, PreTrainedTokenizerBase, BlipImageProcessorPil, LoadReport]:
    """`load_base` with LoRA (plus `extra_trained` layers) and the stage-3 weights: (model, tokenizer, image processor,
    report), the calls notebook 05 §3 shows one by one. Full: BLIP-2's ViT and Llama-2-7b-chat in `bits` on the GPU,
    the released checkpoint (gdown); smoke: tiny models of the same classes on CPU, a synthetic checkpoint."""
    model, tokenizer, image_processor = load_base(profile, bits)
    peft_model = attach_lora(
        model, gradient_checkpointing=gradient_checkpointing, extra_trained=extra_trained
    )
    if profile.is_smoke:
        path = profile.data_dir("checkpoints") / "synthetic_stage3.pth"
        checkpoint = profile.smoke_kit.synthetic_stage3.write(model.config, path)
    else:
        checkpoint = download_stage3_checkpoint(profile.data_dir("checkpoints") / STAGE3_FILENAME)
    report = load_official_checkpoint(peft_model, checkpoint)
    return peft_model, tokenizer, image_processor, report


@contextmanager
def lora_dropped(model: PeftModel) -> Iterator[PeftModel]:
    """The model as the original's `strict=False` load leaves it under peft >= 0.3: llama_proj loaded, every
    LoRA tensor dropped (lora_B zero, so the adapters add nothing); the weights come back on exit."""
    lora_b = {name: param for name, param in model.named_parameters() if ".lora_B." in name}
    if not lora_b:
        raise BadInput("the model has no LoRA tensors to drop: wrap it with attach_lora first")
    saved = {name: param.detach().clone() for name, param in lora_b.items()}
    with torch.no_grad():
        for param in lora_b.values():
            param.zero_()
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, param in lora_b.items():
                param.copy_(saved[name])
