"""Published architectures, written down so real-size audits need no download."""

BLIP2_OPT_2_7B = {
    "vision_config": {
        "hidden_size": 1408,
        "num_hidden_layers": 39,
        "num_attention_heads": 16,
        "intermediate_size": 6144,
        "patch_size": 14,
        "image_size": 224,
    },
    "qformer_config": {"hidden_size": 768, "num_hidden_layers": 12, "cross_attention_frequency": 2},
    "text_config": {
        "model_type": "opt",
        "hidden_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "ffn_dim": 10240,
        "vocab_size": 50272,
        "word_embed_proj_dim": 2560,
        "max_position_embeddings": 2048,
    },
    "num_query_tokens": 32,
}
BLIP_VQA_BASE = {
    "vision_config": {"hidden_size": 768, "num_hidden_layers": 12, "image_size": 384, "patch_size": 16},
    "text_config": {
        "vocab_size": 30524,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "encoder_hidden_size": 768,
    },
}
# Llama-2 uses RMSNorm eps 1e-5 (LlamaConfig's default is 1e-6).
LLAMA_2_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
EVA_VIT_G_448 = {**BLIP2_OPT_2_7B["vision_config"], "image_size": 448}
# Qwen/Qwen3-VL-2B-Instruct's config.json (its output layer tied to the embeddings).
QWEN3_VL_2B = {
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True},
    },
    "vision_config": {
        "depth": 24,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [5, 11, 17],
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    },
    "tie_word_embeddings": True,
}
