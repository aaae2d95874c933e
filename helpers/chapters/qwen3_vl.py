"""Generated from notebooks/08_qwen3_vl.ipynb by `python -m tools.export`: its cells marked `# @save`.
Edit the notebook, not this file."""

import torch
from peft import LoraConfig
from transformers import ProcessorMixin


def chat(prompt: str, answer: str | None = None) -> list[dict]:
    """A user turn holding an image and `prompt` (then the assistant's `answer`), as `apply_chat_template` reads it."""
    turns = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    if answer is not None:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return turns


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
    """LoRA rank 16 on the language model's q_proj and v_proj (05's targets), the vision tower frozen."""
    return LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, bias="none",
                      target_modules=r".*language_model.*\.(q_proj|v_proj)", modules_to_save=list(modules_to_save) or None)  # fmt: skip
