"""Tiny random-weight models of the series' real transformers classes, with tokenizers trained offline.

The smoke profile loads them with the same `from_pretrained(...)` call (quantization config included)
that the full profile uses for hub ids; only the path differs.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertTokenizerFast,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2VisionConfig,
    Blip2VisionModel,
    BlipConfig,
    BlipForQuestionAnswering,
    BlipImageProcessorPil,
    BlipProcessor,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Tokenizer,
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from helpers import runtime
from helpers.smoke import cache

CORPUS = runtime.DATA_DIR / "tokenizer_corpus.txt"
TINY_IMAGE_SIZE = 32
TINY_PATCH = 8
TINY_WIDTH = 32  # the vision towers, the Q-Former and BLIP's text model: 2 layers, 2 heads, MLP 64
TINY_LAYERS = dict(hidden_size=TINY_WIDTH, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
# Random weights must keep a signal's size through each layer: std 1/sqrt(width). The class default 0.02 is
# that rule for widths near 2,500; at width 32 each cross-attention shrinks the image signal ~10x, so the
# Q-Former output barely depends on the image (1.7% relative spread) and captioning learns to ignore it.
TINY_QFORMER_STD = TINY_WIDTH**-0.5


def _corpus() -> list[str]:
    return [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _trained_bpe(
    tok: Tokenizer, vocab_size: int, specials: list[str], alphabet: list[str], bos: str | None
) -> Tokenizer:
    """`tok` (NFC) trained on the fixture corpus, prepending `bos` (when given) to each sequence like OPT and Llama."""
    tok.normalizer = normalizers.NFC()
    trainer = trainers.BpeTrainer(
        show_progress=False, vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet
    )
    tok.train_from_iterator(_corpus(), trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return tok


def _byte_bpe(special_tokens: list[str], bos: str | None, vocab_size: int = 600) -> Tokenizer:
    """A byte-level BPE trained on the fixture corpus (GPT-2's bytes-to-characters table, as OPT's and Qwen's)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return _trained_bpe(tok, vocab_size, special_tokens, pre_tokenizers.ByteLevel.alphabet(), bos)


def train_byte_bpe(special_tokens: list[str], bos: str, vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the fixture corpus that prepends `bos` like OPT and Llama."""
    return PreTrainedTokenizerFast(tokenizer_object=_byte_bpe(special_tokens, bos, vocab_size))


def train_sentencepiece_like(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A BPE laid out like Llama-2's SentencePiece: NFC, `▁` for spaces with one prepended, pieces never cross a
    `▁` (so two spaces give a lone `▁`), <s> prepended, and byte fallback (`<0xNN>`) for characters it lacks."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    alphabet = sorted(set("".join(_corpus())) | set(string.ascii_letters + string.digits))
    tok = _trained_bpe(tok, vocab_size - 256, ["<unk>", "<s>", "</s>"], alphabet, bos="<s>")
    # tokenizers trains no byte pieces: add Llama's 256 `<0xNN>` entries and switch byte fallback on.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    vocab.update({f"<0x{byte:02X}>": len(vocab) + byte for byte in range(256)})
    spec["model"]["byte_fallback"] = True
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def train_wordpiece(vocab_size: int = 600) -> BertTokenizerFast:
    """A WordPiece tokenizer laid out like bert-base-uncased (lowercased, accents stripped) plus `[DEC]`; its
    vocabulary (specials, every character and its `##` form, then the most frequent words) is built here, as
    tokenizers' WordPieceTrainer breaks ties between equally frequent merges differently from run to run."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(
        word
        for line in _corpus()
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))
    )
    characters = sorted({character for word in words for character in word})
    pieces = [*specials, *characters, *(f"##{character}" for character in characters)]
    frequent = sorted((word for word in words if len(word) > 1), key=lambda word: (-words[word], word))
    pieces += frequent[: max(0, vocab_size - len(pieces))]
    tok = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(pieces)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    named = {f"{token[1:-1].lower()}_token": token for token in specials}  # pad_token="[PAD]", ...
    return BertTokenizerFast(tokenizer_object=tok, bos_token="[DEC]", do_lower_case=True, **named)


def tiny_image_processor(size: int = TINY_IMAGE_SIZE) -> BlipImageProcessorPil:
    """BLIP's image processor (bicubic resize, its default OpenAI CLIP mean/std) at the tiny size. It saves the same
    config as the torchvision class, which `from_pretrained` picks where torchvision is installed (Colab, Kaggle)."""
    return BlipImageProcessorPil(size={"height": size, "width": size})


def tiny_vision_config(image_size: int = TINY_IMAGE_SIZE, patch_size: int = TINY_PATCH) -> Blip2VisionConfig:
    """The EVA/BLIP-2 vision tower shrunk to 2 layers of width 32. `initializer_range` 0.02: the class default,
    1e-10, suits only loading trained weights; at random init every image embeds alike, gradients ~1e10."""
    return Blip2VisionConfig(
        initializer_range=0.02, image_size=image_size, patch_size=patch_size, **TINY_LAYERS
    )


def _build(name: str, make: Callable[[Path], None]) -> Path:
    """Run `make(path)` under seed 0 once per version of this file, the corpus and the libraries; the cached folder."""

    def seeded(path: Path) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            make(path)

    return cache.folder(f"tiny-models/{name}", [Path(__file__), CORPUS], seeded, missing_files)


def missing_files(path: Path) -> list[str]:
    """What `from_pretrained(path)` needs and `path` lacks: the config and every weights file (one, or the shards its
    index names). `save_pretrained` writes no weights on a rank other than 0 once torch.distributed is up."""
    index = path / "model.safetensors.index.json"
    weights = {"model.safetensors"}
    if index.is_file():
        weights = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    return [name for name in ["config.json", *sorted(weights)] if not (path / name).is_file()]


def _make_blip2(
    path: Path, image_size: int = TINY_IMAGE_SIZE, patch_size: int = TINY_PATCH, max_shard_size: str = "5GB"
) -> None:
    tokenizer = train_byte_bpe(["<s>", "<pad>", "</s>", "<unk>"], bos="</s>")
    tokenizer.add_special_tokens(
        {"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "</s>", "unk_token": "<unk>"}
    )
    # Blip2Processor adds the <image> token.
    processor = Blip2Processor(tiny_image_processor(image_size), tokenizer, num_query_tokens=4)
    config = Blip2Config(
        vision_config=tiny_vision_config(image_size, patch_size).to_dict(),
        qformer_config={
            **TINY_LAYERS,
            "initializer_range": TINY_QFORMER_STD,
            "cross_attention_frequency": 1,
            "encoder_hidden_size": TINY_WIDTH,
            "vocab_size": 64,
        },
        text_config={
            "model_type": "opt",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "word_embed_proj_dim": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "ffn_dim": 128,
            "max_position_embeddings": 128,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        num_query_tokens=4,
        initializer_range=TINY_QFORMER_STD,  # language_projection reads the Q-Former's 32-wide output
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = Blip2ForConditionalGeneration(config)
    # Trained checkpoints carry distinct query tokens; the random-init default (all zeros) makes them identical.
    torch.nn.init.normal_(model.query_tokens, std=TINY_QFORMER_STD)
    model.save_pretrained(path, max_shard_size=max_shard_size)
    processor.save_pretrained(path)


def _make_blip_vqa(path: Path, image_size: int = TINY_IMAGE_SIZE, patch_size: int = TINY_PATCH) -> None:
    tokenizer = train_wordpiece()
    processor = BlipProcessor(tiny_image_processor(image_size), tokenizer)
    config = BlipConfig(
        vision_config={
            **TINY_LAYERS,
            "image_size": image_size,
            "patch_size": patch_size,
            "initializer_range": TINY_QFORMER_STD,
        },
        text_config={
            **TINY_LAYERS,
            "initializer_range": TINY_QFORMER_STD,
            "vocab_size": len(tokenizer),
            "encoder_hidden_size": TINY_WIDTH,
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "sep_token_id": tokenizer.sep_token_id,
        },
        projection_dim=TINY_WIDTH,
        initializer_range=TINY_QFORMER_STD,  # width 32: keep the image signal through cross-attention
    )
    BlipForQuestionAnswering(config).save_pretrained(path)
    processor.save_pretrained(path)


def _make_llama(path: Path) -> None:
    tokenizer = train_sentencepiece_like()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)


# Qwen3-VL's special tokens (ids 151643-151656 of its tokenizer hold these and seven other markers), and a chat
# template that renders text and image messages as Qwen3-VL-Instruct's own does (no default system message).
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_PATCH, QWEN_MERGE = 16, 2  # Qwen3-VL's: 16-pixel patches, 2x2 of them merged into one visual token


def _make_qwen3_vl(
    path: Path, min_pixels: int = 64 * 64, max_pixels: int = 64 * 64, hub_files: bool = False
) -> None:
    """Qwen3-VL with a byte-level BPE and its processor; images resized to 64x64 pixels (4 visual tokens) unless
    told otherwise. `hub_files`: the processor saved part by part, as Qwen/Qwen3-VL-2B-Instruct's repository holds it."""
    tokenizer = Qwen2Tokenizer(  # no BOS, as Qwen's; errors="replace" decodes a cut multi-byte character
        tokenizer_object=_byte_bpe(QWEN_SPECIALS, bos=None),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
    )
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    grid = dict(patch_size=QWEN_PATCH, merge_size=QWEN_MERGE, temporal_patch_size=2)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3, **grid),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(size=size, **grid),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN_SPECIALS}
    width = TINY_WIDTH
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
            rope_scaling={"rope_type": "default", "mrope_section": [1, 1, 2], "mrope_interleaved": True},
            tie_word_embeddings=True, initializer_range=TINY_QFORMER_STD,
        ),
        vision_config=dict(
            depth=2, hidden_size=width, intermediate_size=2 * width, num_heads=4, out_hidden_size=width,
            patch_size=QWEN_PATCH, spatial_merge_size=QWEN_MERGE, temporal_patch_size=2,
            num_position_embeddings=16, deepstack_visual_indexes=[0, 1], initializer_range=TINY_QFORMER_STD,
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )  # fmt: skip
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(path)
    if not hub_files:
        processor.save_pretrained(path)
        return
    processor.image_processor.save_pretrained(path)  # preprocessor_config.json
    processor.video_processor.save_pretrained(path)  # video_preprocessor_config.json
    tokenizer.save_pretrained(path)
    (path / "chat_template.json").write_text(
        json.dumps({"chat_template": QWEN_CHAT_TEMPLATE}), encoding="utf-8"
    )


def _make_vision_tower(path: Path) -> None:
    Blip2VisionModel(tiny_vision_config(image_size=16, patch_size=4)).save_pretrained(path)
    tiny_image_processor(16).save_pretrained(path)


BUILDERS = {  # runtime.HUB_MODELS key -> (cache folder name, builder of the model and its processor)
    "blip2": ("blip2-opt", _make_blip2),  # Blip2ForConditionalGeneration (OPT, 4 query tokens, 32 px)
    "blip-vqa": ("blip-vqa", _make_blip_vqa),  # BlipForQuestionAnswering (32 px) + WordPiece BlipProcessor
    "llama-2-chat": ("llama", _make_llama),  # LlamaForCausalLM + SentencePiece-like BPE with <s>/</s>/<unk>
    "minigpt-vision": ("eva-vision", _make_vision_tower),  # Blip2VisionModel (16 px, patch 4) + processor
    "qwen3-vl": ("qwen3-vl", _make_qwen3_vl),  # Qwen3VLForConditionalGeneration + byte BPE, its processor
}


def build(key: str) -> Path:
    """The folder of the tiny model standing in for hub model `key`, built once and cached."""
    return _build(*BUILDERS[key])


# key -> (folder suffix, builder arguments): the hub checkpoints' image size and patch (BLIP-2's ViT-g 224 px / 14,
# BLIP VQA's ViT-B 384 px / 16); Salesforce/blip2-opt-2.7b is sharded (its safetensors index names the shards).
# Qwen3-VL-2B-Instruct's processor resizes each image to between 256x256 and 4096x4096 pixels of its own shape.
HUB_SHAPED = {"blip2": ("224px-sharded", (224, 14, "200KB")), "blip-vqa": ("384px", (384, 16)),
              "qwen3-vl": ("hub-processor", (256 * 256, 4096 * 4096, True))}  # fmt: skip


def build_hub_shaped(key: str) -> Path:
    """The tiny model the rehearsal publishes under hub model `key`'s id: the tiny widths at the checkpoint's image
    size and patch, so the full profile's paths (MiniGPT-v2's 448 px, 1,024 patches, 256 tokens) run as written."""
    if key not in HUB_SHAPED:
        return build(key)
    name, make = BUILDERS[key]
    suffix, arguments = HUB_SHAPED[key]
    return _build(f"{name}-{suffix}", lambda path: make(path, *arguments))
