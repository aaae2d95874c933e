"""MiniGPT-v2 as a transformers model: BLIP-2's EVA ViT-g, identity ln_vision, 4-token merger, llama_proj, Llama-2.

Assembled from Salesforce/blip2-opt-2.7b's vision tower (only the shards holding `vision_model.*` are downloaded) and
meta-llama/Llama-2-7b-chat-hf, or in smoke from a saved `Blip2VisionModel` folder and a tiny Llama.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import (
    BitsAndBytesConfig,
    Blip2VisionConfig,
    Blip2VisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import CausalLMOutputWithPast

from helpers.chapters.minigpt_v2_vivqa import attach_lora
from helpers.models.architectures import EVA_VIT_G_448, LLAMA_2_7B
from helpers.models.visual_tokens import TOKENS_PER_GROUP, merge_visual_tokens

IMAGE_TOKEN_ID = -200  # not a vocabulary id: marks the input_ids positions that receive image embeddings
VISION_PREFIX = "vision_model."
# The LLM's loading markers, mirrored so that Trainer and peft treat the whole model as quantized/placed.
_MARKERS = ("hf_quantizer", "quantization_method", "is_loaded_in_8bit", "is_loaded_in_4bit", "hf_device_map")


class MiniGPTv2Config(PretrainedConfig):
    """Vision (Blip2VisionConfig) + LLM (LlamaConfig) sub-configs and MiniGPT-v2's own constants; the defaults are
    the released model: EVA ViT-g at 448 px (1024 patches -> 256 tokens) and Llama-2-7b."""

    model_type = "minigpt_v2"
    sub_configs = {"vision_config": Blip2VisionConfig, "text_config": LlamaConfig}

    def __init__(
        self,
        vision_config: dict | Blip2VisionConfig | None = None,
        text_config: dict | LlamaConfig | None = None,
        ln_vision_eps: float = 1e-5,
        tokens_per_group: int = TOKENS_PER_GROUP,
        **kwargs,
    ):
        super().__init__(**kwargs)  # first: it would reset the sub-configs' attention implementation
        if not isinstance(vision_config, Blip2VisionConfig):
            vision_config = Blip2VisionConfig(**(EVA_VIT_G_448 if vision_config is None else vision_config))
        if not isinstance(text_config, LlamaConfig):
            text_config = LlamaConfig(**(LLAMA_2_7B if text_config is None else text_config))
        patches = (vision_config.image_size // vision_config.patch_size) ** 2
        if patches % tokens_per_group:
            raise ValueError(
                f"image_size {vision_config.image_size} / patch {vision_config.patch_size} gives {patches} patches,"
                f" not a multiple of {tokens_per_group}: the merger needs whole groups (448 px gives 1024)"
            )
        self.vision_config = vision_config
        self.text_config = text_config
        self.ln_vision_eps = ln_vision_eps
        self.tokens_per_group = tokens_per_group

    @property
    def num_image_tokens(self) -> int:
        """LLM tokens per image: (image_size / patch_size)^2 / tokens_per_group (256 at 448 px)."""
        return (self.vision_config.image_size // self.vision_config.patch_size) ** 2 // self.tokens_per_group


class MiniGPTv2ForConditionalGeneration(PreTrainedModel):
    """MiniGPT-v2: `vision_model` (frozen) -> `ln_vision` -> merger -> `llama_proj` -> `language_model`; `input_ids`
    hold IMAGE_TOKEN_ID where the image embeddings go (see helpers.models.minigpt_v2_prompts)."""

    config_class = MiniGPTv2Config
    base_model_prefix = "minigpt_v2"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Blip2EncoderLayer", "LlamaDecoderLayer"]
    _supports_sdpa = True
    _keep_in_fp32_modules = ["llama_proj"]

    def __init__(
        self,
        config: MiniGPTv2Config,
        vision_model: Blip2VisionModel | None = None,
        language_model: LlamaForCausalLM | None = None,
    ):
        super().__init__(config)
        vision_dim = config.vision_config.hidden_size
        self.vision_model = (
            vision_model if vision_model is not None else Blip2VisionModel(config.vision_config)
        )
        # The original creates ln_vision fresh and never loads it: no affine parameters is its weight 1 / bias 0.
        self.ln_vision = nn.LayerNorm(vision_dim, eps=config.ln_vision_eps, elementwise_affine=False)
        self.llama_proj = nn.Linear(vision_dim * config.tokens_per_group, config.text_config.hidden_size)
        self.language_model = (
            language_model if language_model is not None else LlamaForCausalLM(config.text_config)
        )
        self.vision_model.requires_grad_(False)
        # Keep the shared config pointing at the live sub-configs (as EncoderDecoderModel does).
        self.config.vision_config = self.vision_model.config
        self.config.text_config = self.language_model.config
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """llama_proj as nn.Linear's own default init (the original builds a plain nn.Linear)."""
        if module is self.llama_proj and module.weight.device.type != "meta":
            module.reset_parameters()

    def train(self, mode: bool = True) -> MiniGPTv2ForConditionalGeneration:
        """As the original's disabled_train: the frozen vision tower stays in eval mode."""
        super().train(mode)
        self.vision_model.eval()
        return self

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, num_image_tokens, llm_hidden): ViT output before post_layernorm, ln_vision in fp32."""
        vision_dtype = self.vision_model.embeddings.patch_embedding.weight.dtype
        hidden = self.vision_model.embeddings(pixel_values.to(vision_dtype))
        hidden = self.vision_model.encoder(inputs_embeds=hidden).last_hidden_state  # post_layernorm skipped
        hidden = self.ln_vision(hidden.float())
        merged = merge_visual_tokens(hidden[:, 1:, :], self.config.tokens_per_group)  # CLS dropped
        return self.llama_proj(merged.to(self.llama_proj.weight.dtype))

    def embed_inputs(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings with each example's IMAGE_TOKEN_ID run replaced by its image embeddings."""
        image_embeds = self.encode_images(pixel_values)
        is_image = input_ids == IMAGE_TOKEN_ID
        per_example = is_image.sum(dim=1)
        expected = image_embeds.shape[1]
        if input_ids.shape[0] != image_embeds.shape[0] or bool((per_example != expected).any()):
            raise ValueError(
                f"each example needs exactly {expected} image positions (IMAGE_TOKEN_ID) and one image;"
                f" got {per_example.tolist()} positions for {image_embeds.shape[0]} images"
            )
        embeds = self.get_input_embeddings()(input_ids.masked_fill(is_image, 0))
        return embeds.masked_scatter(is_image[..., None], image_embeds.to(embeds.dtype))

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Causal-LM forward on [BOS, prompt, image, prompt, answer]; `loss` when `labels` are given."""
        inputs_embeds = self.embed_inputs(pixel_values, input_ids)
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **kwargs
        )

    @classmethod
    def from_vision_and_llm_pretrained(
        cls,
        vision_source: str | Path,
        llm_source: str | Path,
        *,
        image_size: int = 448,
        quantization_config: BitsAndBytesConfig | None = None,
        device_map: str | dict | None = None,
        dtype: torch.dtype = torch.float32,
        token: str | None = None,
    ) -> MiniGPTv2ForConditionalGeneration:
        """Assemble from a BLIP-2 (or Blip2VisionModel) source and a Llama source (loaded with these settings); the
        vision tower's position embeddings are interpolated once (fp32 bicubic) to `image_size`."""
        language_model = LlamaForCausalLM.from_pretrained(
            llm_source,
            quantization_config=quantization_config,
            device_map=device_map,
            dtype=dtype,
            token=token,
        )
        vision_config, vision_weights = read_vision_weights(vision_source, token=token)
        vision_config.image_size = image_size
        with torch.device("meta"):  # no memory until the weights are assigned, already in `dtype`
            vision_model = Blip2VisionModel(vision_config).to(dtype)
        config = MiniGPTv2Config(vision_config=vision_config, text_config=language_model.config)
        model = cls(config, vision_model=vision_model, language_model=language_model)
        load_vision_weights(model.vision_model, vision_weights)
        device = language_model.get_input_embeddings().weight.device
        model.vision_model.to(device=device)
        model.llama_proj.to(device=device)  # stays fp32: it is trained (the original runs it under autocast)
        for marker in _MARKERS:
            if hasattr(language_model, marker):
                setattr(model, marker, getattr(language_model, marker))
        return model


def interpolate_position_embedding(position_embedding: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + g*g, D) -> (1, 1 + grid*grid, D) in fp32 bicubic, CLS kept; written out because transformers'
    `interpolate_pos_encoding` redoes it in the model dtype on every call, the original once in fp32."""
    source = position_embedding.float()
    cls_position, patch_positions = source[:, :1], source[:, 1:]
    old_grid = math.isqrt(patch_positions.shape[1])
    if old_grid * old_grid != patch_positions.shape[1]:
        raise ValueError(
            f"position embedding has {patch_positions.shape[1]} patch positions, not a square grid"
        )
    if old_grid == grid:
        return source
    dim = source.shape[-1]
    patch_positions = patch_positions.reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
    patch_positions = F.interpolate(patch_positions, size=(grid, grid), mode="bicubic", align_corners=False)
    patch_positions = patch_positions.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([cls_position, patch_positions], dim=1)


def _source_file(source: str | Path, filename: str, token: str | None) -> Path | None:
    """A file from a local folder or a hub repository (downloaded alone), or None when it is not there."""
    local = Path(source)
    if local.is_dir():
        return local / filename if (local / filename).exists() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(str(source), filename, token=token))
    except EntryNotFoundError:
        return None


def read_vision_weights(source: str | Path, token: str | None = None) -> tuple[Blip2VisionConfig, dict]:
    """The vision config and tensors (names without `vision_model.`) of a BLIP-2 repo or vision folder; of a sharded
    checkpoint only the shards holding `vision_model.*` are read (for blip2-opt-2.7b: not the OPT weights)."""
    config_file = _source_file(source, "config.json", token)
    if config_file is None:
        raise FileNotFoundError(
            f"{source}: no config.json (expected a BLIP-2 repository or a saved vision model)"
        )
    config_dict = json.loads(config_file.read_text())
    vision_config = Blip2VisionConfig(**config_dict.get("vision_config", config_dict))
    index_file = _source_file(source, "model.safetensors.index.json", token)
    shards = ["model.safetensors"]
    if index_file is not None:
        weight_map = json.loads(index_file.read_text())["weight_map"]
        vision_shards = {shard for name, shard in weight_map.items() if name.startswith(VISION_PREFIX)}
        shards = sorted(vision_shards or set(weight_map.values()))
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        shard_file = _source_file(source, shard, token)
        if shard_file is None:
            raise FileNotFoundError(f"{source}: weight file {shard} is missing")
        with safe_open(str(shard_file), framework="pt") as handle:
            names = list(handle.keys())
            prefixed = any(name.startswith(VISION_PREFIX) for name in names)  # a BLIP-2 repo, not a folder
            for name in names:
                if name.startswith(VISION_PREFIX) or not prefixed:
                    weights[name.removeprefix(VISION_PREFIX)] = handle.get_tensor(name)
    if not weights:
        raise ValueError(f"{source}: no vision tensors found in {', '.join(shards)}")
    return vision_config, weights


def load_vision_weights(vision_model: Blip2VisionModel, weights: dict[str, torch.Tensor]) -> None:
    """Load vision tensors strictly (consuming `weights`), interpolating the position embedding to the model's grid."""
    grid = vision_model.config.image_size // vision_model.config.patch_size
    key = "embeddings.position_embedding"
    if key not in weights:
        raise KeyError(f"vision weights lack {key}")
    weights[key] = interpolate_position_embedding(weights[key], grid)
    target_dtype = vision_model.embeddings.patch_embedding.weight.dtype
    # Popped one by one so that a 4 GB fp32 tower is never held twice in host memory.
    converted = {name: weights.pop(name).to(target_dtype) for name in list(weights)}
    result = vision_model.load_state_dict(converted, strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"vision weights do not fit Blip2VisionModel: {len(result.missing_keys)} missing"
            f" {result.missing_keys[:5]}, {len(result.unexpected_keys)} unexpected {result.unexpected_keys[:5]}"
        )


def real_size_counts() -> dict[str, int]:
    """Parameter counts of this implementation at real size (EVA ViT-g 448 px, Llama-2-7b, LoRA r64), on `meta`."""
    with torch.device("meta"):
        model = MiniGPTv2ForConditionalGeneration(MiniGPTv2Config())
    parts = {"vision": model.vision_model, "llama_proj": model.llama_proj, "llm_base": model.language_model}
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}  # before LoRA
    trainable = [(name, p.numel()) for name, p in attach_lora(model).named_parameters() if p.requires_grad]
    counts["lora"] = sum(n for name, n in trainable if ".lora_" in name)
    return {**counts, "trainable": sum(n for _, n in trainable), "trainable_tensors": len(trainable)}
