"""Writes tests/data/minigpt_v2_original/: a tiny MiniGPT-v2 run through the original Vision-CAIR code, whose
figures tests/test_original_minigpt_v2.py asks the port in helpers/models to reproduce.

Not part of the series, and not run by CI: it needs a checkout of Vision-CAIR/MiniGPT-4 (its `minigpt4` folder) and
a throwaway environment with the versions that repository pins where they still install (transformers 4.30.0,
tokenizers 0.13.3, peft 0.2.0, accelerate 0.20.3, numpy 1.26) beside torch 2.13 (the CPU wheel at hand):

    python -m venv /tmp/old && /tmp/old/bin/pip install torch==2.13.0 "transformers==4.30.0" "numpy<2" \
        "peft==0.2.0" "accelerate<0.21" omegaconf sentencepiece "protobuf<3.21" pandas pyyaml safetensors pillow "setuptools<70"
    /tmp/old/bin/python tools/original_minigpt_v2.py /path/to/MiniGPT-4 tests/data/minigpt_v2_original

What runs is the original's own code: `eva_vit.VisionTransformer` and `interpolate_pos_embed`, `base_model.LayerNorm`
as `ln_vision`, its `modeling_llama.LlamaForCausalLM` wrapped by peft 0.2.0's LoRA as `init_llm` does, and
`MiniGPTv2.encode_img`, `get_context_emb`, `forward` and `generate`. Only what needs the internet or torchvision is
replaced: the object is assembled without `__init__` (which downloads EVA ViT-g and Llama-2), and timm,
torchvision and iopath, imported by modules whose code never runs here, are stubbed (timm's `drop_path` at rate 0
is the identity; its init functions only draw weights that are overwritten). Weights are drawn from fixed seeds.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch

IMAGE, CHECKPOINT_IMAGE, PATCH = (
    56,
    28,
    14,
)  # 4x4 patches -> 4 tokens; the "released" ViT at 2x2, interpolated
QUESTIONS = ("what color is the cat", "con mèo màu gì")
ANSWERS = ("white", "màu trắng")
CORPUS = [
    f"[INST] <Img><ImageHere></Img> [vqa] {q} [/INST] {a}</s>"
    for q in ("what color is the cat", "how many dogs are there", "con mèo màu gì", "có bao nhiêu con chó")
    for a in ("white", "two", "màu trắng", "hai con")
] + ["Based on the image, respond to this question with a short answer: what is on the table"] * 4


def stub_modules() -> None:
    """Modules the original imports at the top of files whose code never runs in this script."""

    def module(name: str, **attributes: object) -> None:
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__dict__.update(attributes)

    def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
        if drop_prob:
            raise ValueError("this script runs without stochastic depth")
        return x

    module("timm")
    module("timm.models")
    module("timm.models.hub")
    module("timm.models.registry", register_model=lambda f: f)
    module(
        "timm.models.layers",
        drop_path=drop_path,
        to_2tuple=lambda x: (x, x),
        trunc_normal_=lambda tensor, std=1.0, **_: torch.nn.init.trunc_normal_(tensor, std=std),
    )
    module("iopath")
    module("iopath.common")
    module("iopath.common.download", download=None)
    module("iopath.common.file_io", file_lock=None, g_pathmgr=None)
    module("torchvision")
    module("torchvision.datasets")
    module(
        "torchvision.datasets.utils",
        **dict.fromkeys(
            ["download_file_from_google_drive", "download_url", "extract_archive", "check_integrity"], None
        ),
    )


def package(name: str, folder: Path) -> None:
    """Register `name` as a package at `folder` without running its __init__ (it imports every dataset builder)."""
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [str(folder)]


def tokenizer_files(folder: Path) -> None:
    """A Llama-style SentencePiece BPE (byte fallback, ids unk 0 / <s> 1 / </s> 2), slow and fast files."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer, LlamaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 8),
        model_prefix=str(folder / "spm"),
        model_type="bpe",
        vocab_size=300,  # where the fast form agrees with SentencePiece, checked below (Llama-2's do)
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        hard_vocab_limit=False,
    )
    slow = LlamaTokenizer(vocab_file=str(folder / "spm.model"))
    slow.save_pretrained(folder)
    fast = LlamaTokenizerFast.from_pretrained(folder, from_slow=True)
    fast.save_pretrained(folder)
    texts = [
        *CORPUS,
        "[INST] <Img>",
        *(f"</Img> [vqa] {q}  [/INST]" for q in QUESTIONS),
        *(f"{a}</s>" for a in ANSWERS),
    ]
    differ = [
        t
        for t in texts
        if slow(t, add_special_tokens=False).input_ids != fast(t, add_special_tokens=False).input_ids
    ]
    if differ:
        raise ValueError(
            f"the fast tokenizer splits {len(differ)} texts otherwise than SentencePiece: {differ[:2]}"
        )
    for leftover in ("spm.model", "spm.vocab"):
        (folder / leftover).unlink()


def eva_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """EVA ViT names -> Blip2VisionModel names, as transformers' BLIP-2 conversion script renames them (the q and v
    biases joined around a zero k bias)."""
    renamed = {
        "embeddings.class_embedding": state["cls_token"],
        "embeddings.position_embedding": state["pos_embed"],
        "embeddings.patch_embedding.weight": state["patch_embed.proj.weight"],
        "embeddings.patch_embedding.bias": state["patch_embed.proj.bias"],
        # BLIP-2's checkpoint holds a post_layernorm (BLIP-2's own ln_vision); MiniGPT-v2 never uses it.
        "post_layernorm.weight": torch.ones(state["cls_token"].shape[-1]),
        "post_layernorm.bias": torch.zeros(state["cls_token"].shape[-1]),
    }
    layers = {int(name.split(".")[1]) for name in state if name.startswith("blocks.")}
    for i in sorted(layers):
        old, new = f"blocks.{i}.", f"encoder.layers.{i}."
        for a, b in (("norm1", "layer_norm1"), ("norm2", "layer_norm2"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2"),
                     ("attn.proj", "self_attn.projection")):  # fmt: skip
            renamed[f"{new}{b}.weight"] = state[f"{old}{a}.weight"]
            renamed[f"{new}{b}.bias"] = state[f"{old}{a}.bias"]
        renamed[f"{new}self_attn.qkv.weight"] = state[f"{old}attn.qkv.weight"]
        q_bias, v_bias = state[f"{old}attn.q_bias"], state[f"{old}attn.v_bias"]
        renamed[f"{new}self_attn.qkv.bias"] = torch.cat([q_bias, torch.zeros_like(v_bias), v_bias])
    return {name: tensor.contiguous() for name, tensor in renamed.items()}


def draw(parameters: object, std: float, seed: int) -> None:
    """Overwrite `parameters` with normal draws of `std` from `seed`: the fixed weights the figures come from."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for tensor in parameters:
            tensor.normal_(0, std)


def main(original: Path, out: Path) -> None:
    import peft  # noqa: F401  (before the stubs: transformers and peft look for timm and torchvision once)
    import transformers  # noqa: F401

    stub_modules()
    package("minigpt4", original / "minigpt4")
    package("minigpt4.models", original / "minigpt4" / "models")
    from functools import partial

    from minigpt4.models import eva_vit
    from minigpt4.models.base_model import BaseModel, LayerNorm

    sys.modules["minigpt4.models"].BaseModel = BaseModel  # what the registry checks a model class against
    from minigpt4.models.minigpt_v2 import MiniGPTv2
    from minigpt4.models.modeling_llama import LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import Blip2VisionConfig, LlamaConfig, LlamaTokenizer

    out.mkdir(parents=True, exist_ok=True)
    tokenizer_files(out / "llm")
    tokenizer = LlamaTokenizer.from_pretrained(out / "llm", use_fast=False)
    tokenizer.pad_token = "$$"  # init_llm's pad token (not in the vocabulary: unk's id)

    def vit(image_size: int) -> torch.nn.Module:  # create_eva_vit_g's call at a tiny width and depth
        return eva_vit.VisionTransformer(
            img_size=image_size, patch_size=PATCH, use_mean_pooling=False, embed_dim=16, depth=2, num_heads=2,
            mlp_ratio=4.3637, qkv_bias=True, drop_path_rate=0, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        )  # fmt: skip

    released = vit(CHECKPOINT_IMAGE)
    draw(released.parameters(), 0.5, seed=0)
    released_state = {name: t.detach().clone() for name, t in released.state_dict().items()}
    (out / "vision").mkdir(exist_ok=True)
    vision_config = Blip2VisionConfig(
        hidden_size=16, intermediate_size=int(16 * 4.3637), num_hidden_layers=2, num_attention_heads=2,
        image_size=CHECKPOINT_IMAGE, patch_size=PATCH, layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True,
    )  # fmt: skip
    vision_config.save_pretrained(out / "vision")
    save_file(eva_to_transformers(released_state), str(out / "vision" / "model.safetensors"))
    visual_encoder = vit(IMAGE)  # create_eva_vit_g: the checkpoint's positions interpolated to the new grid
    state = dict(released_state)
    eva_vit.interpolate_pos_embed(visual_encoder, state)
    visual_encoder.load_state_dict(state, strict=True)

    llm_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=False,
    )  # fmt: skip
    llama = LlamaForCausalLM(llm_config)
    draw(llama.parameters(), 0.3, seed=1)
    llama.save_pretrained(out / "llm", safe_serialization=True)
    # init_llm's LoRA (r 64, alpha 16, dropout 0.05 on q_proj and v_proj), its B drawn instead of zeros
    lora = LoraConfig(r=64, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], bias="none",
                      task_type="CAUSAL_LM")  # fmt: skip
    llama_model = get_peft_model(llama, lora)
    draw((t for name, t in llama_model.named_parameters() if "lora_" in name), 0.05, seed=2)

    model = MiniGPTv2.__new__(MiniGPTv2)
    torch.nn.Module.__init__(model)
    model.visual_encoder, model.ln_vision = visual_encoder, LayerNorm(visual_encoder.num_features)
    model.llama_model, model.llama_tokenizer = llama_model, tokenizer
    model.llama_proj = torch.nn.Linear(visual_encoder.num_features * 4, llm_config.hidden_size)
    draw(model.llama_proj.parameters(), 0.2, seed=3)
    # minigptv2_finetune.yaml: chat template on, answers end with </s>
    model.max_txt_len, model.max_context_len, model.end_sym = 1024, 3800, "</s>"
    model.prompt_template, model.prompt_list, model.chat_template = "[INST] {} [/INST]", [], True
    model.eval()

    # What the stage-3 checkpoint holds: the trainable tensors (LoRA and llama_proj) under the original's names.
    stage3 = {
        name: t.detach().clone()
        for name, t in model.named_parameters()
        if "lora_" in name or "llama_proj" in name
    }
    torch.save({"model": stage3}, out / "stage3.pth")

    torch.manual_seed(4)
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    captured: dict[str, torch.Tensor] = {}
    inner = (
        model.llama_model.base_model
    )  # peft 0.2.0's LoraModel keeps the LLM's bound forward: no module hooks
    forward = inner.forward

    def recording_forward(**kwargs: object) -> object:
        output = forward(**kwargs)
        captured.update(inputs_embeds=kwargs["inputs_embeds"], attention_mask=kwargs["attention_mask"],
                        labels=kwargs["labels"], logits=output.logits)  # fmt: skip
        return output

    inner.forward = recording_forward
    with torch.no_grad():
        visual, _ = model.encode_img(pixels)
        training = model.forward(
            {"image": pixels, "instruction_input": [f"<Img><ImageHere></Img> [vqa] {q} " for q in QUESTIONS],
             "answer": list(ANSWERS)}
        )  # fmt: skip
    inner.forward = forward
    train = {f"train_{k}": v for k, v in captured.items()}
    # The evaluation scripts' text: the conversation template writes "<s>[INST] " itself.
    texts = [f"<s>[INST] <Img><ImageHere></Img> [vqa] {q} [/INST]" for q in QUESTIONS]
    generated: list[torch.Tensor] = []
    generate = model.llama_model.generate

    def recording_generate(**kwargs: object) -> torch.Tensor:
        generated.append(generate(**kwargs))
        return generated[-1]

    model.llama_model.generate = recording_generate
    with torch.no_grad():
        context = model.get_context_emb(texts[0], [visual[:1]])
        answers = model.generate(pixels, texts, max_new_tokens=6)
    segments = [
        tokenizer(s, add_special_tokens=i == 0).input_ids for i, s in enumerate(texts[0].split("<ImageHere>"))
    ]
    tensors = {
        "pixel_values": pixels,
        "visual_tokens": visual,
        "context_embeds": context,
        "generated_ids": generated[0],
        "train_loss": training["loss"].reshape(1),
        **{k: v for k, v in train.items() if v is not None},
    }
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(out / "expected.safetensors"))
    note = {
        "made_by": "tools/original_minigpt_v2.py",
        "original": "github.com/Vision-CAIR/MiniGPT-4, minigpt4/models (eva_vit, base_model, modeling_llama, "
        "minigpt_base, minigpt_v2)",
        "versions": {
            name: __import__(name).__version__ for name in ("torch", "transformers", "peft", "tokenizers")
        },
        "questions": QUESTIONS,
        "answers": ANSWERS,
        "generation_texts": texts,
        "context_segment_ids": segments,
        "generated_answers": answers,
    }
    (out / "expected.json").write_text(
        json.dumps(note, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(json.dumps(note, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
