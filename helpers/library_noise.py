"""Drops six library messages that fire in every smoke run and ask nothing of the reader; one message each.

Nothing else is filtered: each filter matches one logger (or warning) and the start of one message.
"""

from __future__ import annotations

import logging
import warnings


class DropMessage(logging.Filter):
    """Drops records whose unformatted message starts with `prefix`; every other record passes."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# bitsandbytes/autograd/_functions.py (MatMul8bitLt.forward): logged on every int8 layer call in eval/generate
# whenever activations are not fp16. On CPU they are fp32 by design (fp16 is slower there, and peft's k-bit
# preparation upcasts the non-int8 weights to fp32 anyway); bnb quantizes them through fp16 as it always does.
logging.getLogger("bitsandbytes.autograd._functions").addFilter(
    DropMessage("MatMul8bitLt: inputs will be cast from")
)
# The same message as a UserWarning, as bitsandbytes 0.49 (the release CI's colab job tests) emits it.
warnings.filterwarnings(
    "ignore",
    message="MatMul8bitLt: inputs will be cast from",
    category=UserWarning,
    module="bitsandbytes.autograd._functions",
)
# bitsandbytes/backends/cpu/ops.py, at import on CPUs with AVX512-BF16: the optional `kernels` package (a 4-bit
# CPU gemm downloaded from the Hub) is absent. The series' 4-bit path falls back to bnb's own kernel.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    DropMessage("Failed to load CPU gemm_4bit_forward from kernels-community")
)
# transformers/trainer_utils.py (sort_checkpoints): smoke epochs save checkpoints < 1 s apart, which its mtime
# heuristic takes for a filesystem without mtimes; it then orders by step number, which is right anyway.
logging.getLogger("transformers.trainer_utils").addFilter(
    DropMessage("mtime may not be reliable on this filesystem")
)
# peft 0.21's PeftModel.__init__ reads transformers 5's deprecated alias `model.is_gradient_checkpointing`.
warnings.filterwarnings(
    "ignore",
    message="`is_gradient_checkpointing` is deprecated",
    category=FutureWarning,
    module="transformers.modeling_utils",
)
# peft 0.20 (Colab's) saving an adapter of a model with no hub id (MiniGPT-v2 is assembled from two sources): it
# looks for a config under the empty name, warns, and keeps the embeddings out, which is right (they are frozen).
# peft 0.21 skips the look-up for an empty name.
warnings.filterwarnings(
    "ignore",
    message="Could not find a config file in  - will assume",
    category=UserWarning,
    module="peft.utils.save_and_load",
)
