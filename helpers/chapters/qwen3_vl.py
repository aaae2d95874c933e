"""Generated from notebooks/08_qwen3_vl.ipynb by `python -m tools.export`: its cells marked `# @save`.
Edit the notebook, not this file."""

import torch
from transformers import GenerationConfig, PreTrainedModel, ProcessorMixin
from pathlib import Path
from peft import LoraConfig
from transformers import TrainingArguments
from helpers import runtime
from helpers.chapters.minigpt_v2_vivqa import minigpt_arguments


def chat(prompt: str, answer: str | None = None) -> list[dict]:
    """A user turn holding an image and `prompt` (then the assistant's `answer`), as `apply_chat_template` reads it."""
    turns = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    if answer is not None:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return turns


@torch.no_grad()
def qwen_generate(model: PreTrainedModel, processor: ProcessorMixin, images: list, prompts: list[str],
                  max_new_tokens: int) -> list[str]:  # fmt: skip
    """Greedy answers of `model` to one batch, one image per prompt (in eval mode: no dropout), only the new tokens
    decoded; greedy whatever sampling the checkpoint's generation_config.json suggests, its stop tokens kept."""
    model.eval()
    greedy = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id,
                              eos_token_id=model.generation_config.eos_token_id)  # fmt: skip
    texts = [processor.apply_chat_template(chat(prompt), add_generation_prompt=True) for prompt in prompts]
    batch = processor(images=images, text=texts, padding=True, padding_side="left", return_tensors="pt")
    batch = batch.to(model.device)
    batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
    out = model.generate(**batch, generation_config=greedy)
    new = processor.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return [answer.strip() for answer in new]


VQA_PROMPT = (
    "{}\nTrả lời bằng một từ hoặc một cụm từ ngắn bằng tiếng Việt."  # the question, then the instruction
)


class QwenVQACollator:
    """Trainer batches of ViVQA rows for Qwen3-VL: chat-template prompts with the answer, padded on the right, labels
    -100 everywhere but the answer and its <|im_end|>."""

    def __init__(self, processor: ProcessorMixin, prompt: str) -> None:
        self.processor, self.prompt = processor, prompt

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        prompts = [self.processor.apply_chat_template(chat(self.prompt.format(row["question"])), add_generation_prompt=True)
                   for row in rows]  # fmt: skip
        answers = [row["answer"] + "<|im_end|>" for row in rows]
        texts = [prompt + answer for prompt, answer in zip(prompts, answers, strict=True)]
        batch = self.processor(images=[row["image"] for row in rows], text=texts, padding=True,
                               padding_side="right", return_tensors="pt")  # fmt: skip
        labels = torch.full_like(batch["input_ids"], -100)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for row, (answer, end) in enumerate(
            zip(
                self.processor.tokenizer(answers, add_special_tokens=False)["input_ids"], lengths, strict=True
            )
        ):
            if batch["input_ids"][row, end - len(answer) : end].tolist() != answer:
                raise ValueError(
                    f"row {row}: the answer {answers[row]!r} is not tokenized alike after its prompt"
                )
            labels[row, end - len(answer) : end] = batch["input_ids"][row, end - len(answer) : end]
        batch["labels"] = labels
        return batch


def qwen_lora_config(modules_to_save: tuple[str, ...] = ()) -> LoraConfig:
    """LoRA rank 16 on the language model's q_proj and v_proj (05's targets), the vision tower frozen; a tied layer
    in `modules_to_save` (the output layer, one matrix with the embeddings) is trained as one, tied still."""
    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, bias="none",
                      target_modules=r".*language_model.*\.(q_proj|v_proj)", modules_to_save=list(modules_to_save) or None,
                      ensure_weight_tying=bool(modules_to_save))  # fmt: skip


def qwen_arguments(recipe: runtime.Recipe, output_dir: str | Path, **changes: object) -> TrainingArguments:
    """05's `minigpt_arguments` with this recipe's learning rate and warm-up and a cosine schedule."""
    return minigpt_arguments(recipe, output_dir, learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps,
                             lr_scheduler_type="cosine", **changes)  # fmt: skip
