"""The run profile, resolved once: model sources, recipe sizes, folders, device, seeding and secrets."""

from __future__ import annotations

import json
import math
import os
import random
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import numpy as np
import torch
from huggingface_hub import HfApi

PROFILES = ("smoke", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DRIVE_MOUNT = Path("/content/drive")
DRIVE_OUTPUTS = DRIVE_MOUNT / "MyDrive" / "vi-vlm-tutorials" / "outputs"
KAGGLE_OUTPUTS = Path("/kaggle/working/outputs")
COLAB_DATA = Path("/content/vi-vlm-data")  # the VM's own disk: large and fast, gone with the session
# Seconds between two requests to a site served from this machine (fixtures, the rehearsal's mirror): the
# configured courtesy pause is for other people's servers.
LOOPBACK_REQUEST_INTERVAL = 0.01
# The hub checkpoints of the full profile; the smoke profile builds tiny models of the same classes.
HUB_MODELS = {
    "blip2": "Salesforce/blip2-opt-2.7b",
    "blip-vqa": "Salesforce/blip-vqa-base",
    "llama-2-chat": "meta-llama/Llama-2-7b-chat-hf",  # gated: accept the licence on the hub, set HF_TOKEN
    "minigpt-vision": "Salesforce/blip2-opt-2.7b",  # not the -coco variants: their ViT was fine-tuned
    "qwen3-vl": "Qwen/Qwen3-VL-2B-Instruct",  # Apache-2.0, not gated; a transformers class since 4.57
}


# How far a GPU chapter goes: a result within one free T4 session, or the sources' own runs across sessions.
RUNS = ("one-session", "reproduce")


@dataclass(frozen=True)
class Recipe:
    """Training, evaluation and generation sizes of one chapter in one profile and run."""

    epochs: int
    learning_rate: float
    batch_size: int
    patience: int  # epochs without a better validation loss before early stopping; 0: no early stopping
    max_new_tokens: int  # a cap; MiniGPT-v2's chapters generate up to their longest training answer
    # Layers trained in full beside the LoRA; smoke trains a tiny model's output layer (notebook 03 §4 says why).
    modules_to_save: tuple[str, ...] = ()
    max_steps: int = -1  # > 0: train this many optimizer steps instead of `epochs`
    warmup_steps: int = 0
    # > 0: a checkpoint (and a validation pass) every this many steps instead of every epoch
    save_steps: int = 0
    session_minutes: float = 0  # > 0: save and stop after this long in one session; resuming continues
    # The MiniGPT-v2 fine-tuning tutorial's schedule (notebook 05 §6): warm-up from `warmup_start_lr`, then a cosine
    # to `min_learning_rate` over `schedule_steps` (0: the steps trained), even where training stops earlier.
    schedule_steps: int = 0
    warmup_start_lr: float = 1e-6
    min_learning_rate: float = 1e-6
    lr_scheduler: str = "linear"  # Trainer's `lr_scheduler_type` where Trainer builds the schedule (03)
    eval_questions: int = 0  # > 0: score a fixed subset of this many test rows, stratified by type; 0: all
    validation_rows: int = 0  # > 0: validate on a fixed subset of this many rows; 0: all

    def steps(self, train_rows: int) -> int:
        """Optimizer steps of the run: `max_steps` when set, else epochs x batches per epoch (as `Trainer` counts)."""
        return self.max_steps if self.max_steps > 0 else self.epochs * math.ceil(train_rows / self.batch_size)


# The MiniGPT-v2 fine-tuning tutorial's run: batch 2, AdamW lr 1e-5 after 500 warm-up steps from 1e-6, a cosine to
# 1e-6 over 5 x 2,000 iterations; its ViVQA number is checkpoint_1 (4,000 iterations), its MVTec one checkpoint_4.
TUTORIAL = Recipe(
    epochs=1,
    learning_rate=1e-5,
    batch_size=2,
    patience=0,
    max_new_tokens=40,
    max_steps=10_000,
    warmup_steps=500,
    save_steps=200,
    session_minutes=60,
    schedule_steps=10_000,
    validation_rows=200,  # ours: the tutorial does not validate during training
)
# One free T4 session (60 minutes) holds downloads, the evaluation passes and the training; the chapter prints its
# plan (helpers.models.audit.session_plan) and a test checks that the plan fits. The same warm-up and cosine shape,
# scaled to the steps trained.
ONE_SESSION_MINIGPT = replace(
    TUTORIAL, max_steps=800, warmup_steps=40, save_steps=400, schedule_steps=0, eval_questions=400,
    validation_rows=100, session_minutes=35,  # training stops at 35 minutes, so the evaluation still fits
)  # fmt: skip
_FULL_ONE_SESSION = {
    # The BLIP-2 food report: Adam lr 5e-4, batch 3, 100 epochs; early stopping makes 30 an upper bound.
    "captioning": Recipe(epochs=30, learning_rate=5e-4, batch_size=3, patience=3, max_new_tokens=80),
    # The BLIP VQA exercise's AdamW lr 4e-5 decayed x0.9 per epoch; its 1 epoch made the decay moot, so up to 10.
    "vqa": Recipe(epochs=10, learning_rate=4e-5, batch_size=16, patience=2, max_new_tokens=10, eval_questions=2_000),
    "vivqa": replace(ONE_SESSION_MINIGPT, max_new_tokens=20),
    "defects": ONE_SESSION_MINIGPT,
    # Notebook 08: Qwen3-VL-2B's LoRA sees as many training examples as 05's (400 x 4 = 800 x 2), at LoRA's usual rate.
    "qwen-vivqa": replace(ONE_SESSION_MINIGPT, max_steps=400, batch_size=4, learning_rate=1e-4, warmup_steps=20,
                          save_steps=200, max_new_tokens=20),
}  # fmt: skip
_FULL_REPRODUCE = {
    # The report's recipe: Adam (Trainer's AdamW with its default weight decay 0 is Adam) at a constant 5e-4, 100
    # epochs, no early stopping.
    "captioning": replace(_FULL_ONE_SESSION["captioning"], epochs=100, patience=0, lr_scheduler="constant"),
    # The exercise's single epoch (its batch size is not shown; 16 as in one-session).
    "vqa": Recipe(epochs=1, learning_rate=4e-5, batch_size=16, patience=0, max_new_tokens=10),
    "vivqa": replace(TUTORIAL, max_steps=4_000, max_new_tokens=20),
    "defects": TUTORIAL,
    "qwen-vivqa": replace(TUTORIAL, max_steps=2_000, batch_size=4, learning_rate=1e-4, warmup_steps=100,
                          schedule_steps=0, max_new_tokens=20),  # 05's 4,000 x 2 examples
}  # fmt: skip
# Tiny random models learn from scratch: a larger step, and captions short enough for 128 positions.
_TINY = Recipe(
    epochs=6, learning_rate=1e-2, batch_size=3, patience=2, max_new_tokens=40, modules_to_save=("lm_head",)
)
_SMOKE = {
    "captioning": _TINY,
    # A tiny MiniGPT-v2 learns the fixture's answers from the image in 15 epochs with its output layer trained.
    "vivqa": replace(_TINY, epochs=15, batch_size=8, patience=0, max_new_tokens=8, save_steps=250),
    # Notebook 08's tiny Qwen3-VL learns the fixture's answers from the image in 20 epochs, its output layer trained
    # too (tied to the embeddings, as the real model's is: `qwen_lora_config` keeps them tied).
    "qwen-vivqa": replace(_TINY, epochs=20, batch_size=8, patience=0, max_new_tokens=8, save_steps=500),
    # Box answers are longer and exact: more epochs of larger batches; 24 tokens hold the longest answer.
    "defects": replace(_TINY, epochs=34, batch_size=32, patience=0, max_new_tokens=24, save_steps=100),
    # A tiny BLIP VQA learns icon answers in ~20 epochs at this step; its 8-bit answer head is retrained too.
    # Patience 5: the validation loss of a few scenes is noisy, and training must not end before the model has
    # learned (at 3, one run of notebook 04 in nine scored 0.844 where the others scored 1.0).
    "vqa": Recipe(
        epochs=20,
        learning_rate=3e-3,
        batch_size=6,
        patience=5,
        max_new_tokens=4,
        modules_to_save=("predictions.decoder",),
    ),
}
# RECIPES[profile][run][chapter]. Smoke's tiny runs take seconds, so both runs are the same tiny recipe there.
RECIPES = {
    "full": {"one-session": _FULL_ONE_SESSION, "reproduce": _FULL_REPRODUCE},
    "smoke": dict.fromkeys(RUNS, _SMOKE),
}
# What a notebook needs from an earlier one: the file (under the profile's folder) and the notebook making it.
PREREQUISITES = {
    "scraped": ("scraped/manifest.jsonl", "01_scrape_dishes"),
    "dataset": ("dish_captions/build_info.json", "02_build_dataset"),
}


@dataclass(frozen=True)
class Profile:
    """Where one profile's sources come from and its artefacts go; notebooks get it from `profiles.start()`."""

    name: str
    root: Path  # every artefact of this profile lives under root/name: smoke and full never share a folder
    recipes: dict[str, dict[str, Recipe]] = field(repr=False)  # run -> chapter -> Recipe
    # The smoke package (tiny models, fixture sites and data), handed in by `profiles.profile`; None in full.
    smoke_kit: ModuleType | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.is_smoke and self.smoke_kit is None:
            raise ValueError(
                "the smoke profile needs the smoke package: make it with profiles.profile('smoke')"
            )

    @property
    def is_smoke(self) -> bool:
        """True for the offline profile (tiny models, fixture data)."""
        return self.name == "smoke"

    def output_dir(self, *parts: str) -> Path:
        """A created folder under this profile's outputs (Drive in Colab, so a disconnect loses nothing)."""
        path = self.root.joinpath(self.name, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def data_dir(self, *parts: str) -> Path:
        """A created folder for data, under `TUTORIAL_DATA_DIR`, else the VM's disk in Colab (extracting ~10k files
        through the Drive mount is slow), else the outputs root; the profile's name below it, as for outputs."""
        override = os.environ.get("TUTORIAL_DATA_DIR")
        root = Path(override) if override else COLAB_DATA if in_colab() else self.root
        path = root.joinpath(self.name, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def recipe(self, chapter: str, run: str = "one-session") -> Recipe:
        """The sizes of `chapter` (e.g. "captioning") for `run` ("one-session" or "reproduce") in this profile."""
        if run not in RUNS:
            raise ValueError(f"RUN = {run!r} is not a run; use one of {', '.join(map(repr, RUNS))}")
        return self.recipes[run][chapter]

    def model(self, key: str) -> str:
        """The hub id of `key` in full; in smoke the folder of a tiny model of the same classes."""
        if key not in HUB_MODELS:
            raise KeyError(f"unknown model {key!r}; known: {', '.join(HUB_MODELS)}")
        return str(self.smoke_kit.tiny_models.build(key)) if self.is_smoke else HUB_MODELS[key]

    def revision(self, key: str) -> str:
        """The commit `model(key)` resolves to on the Hub now (full), recorded in the adapter card so a later edit of
        the repo cannot change a run unseen; in smoke the tiny model's cache folder, which names its build key."""
        return f"local {Path(self.model(key)).name}" if self.is_smoke else hub_commit(HUB_MODELS[key])

    def sites(self, config: dict) -> AbstractContextManager[dict]:
        """The scraping config to use while the block runs: fixture sites on 127.0.0.1 in smoke; in full the real
        sites, or their mirror (`mirrored`), at the loopback pace when it is served from this machine."""
        if self.is_smoke:
            return self.smoke_kit.scrape_fixtures.serving(config)
        sites = {name: {**s, "base_url": mirrored(s["base_url"])} for name, s in config["sites"].items()}
        if sites and all(urlsplit(s["base_url"]).hostname == "127.0.0.1" for s in sites.values()):
            return nullcontext({**config, "sites": sites, "request_interval": LOOPBACK_REQUEST_INTERVAL})
        return nullcontext({**config, "sites": sites})

    def require(self, name: str) -> Path:
        """An earlier notebook's output: rebuilt offline in smoke when missing; in full, says what to run."""
        relative, notebook = PREREQUISITES[name]
        path = self.root / self.name / relative
        if not path.exists() and not self.is_smoke:
            raise FileNotFoundError(f"{path} is missing: run notebook {notebook} in the full profile first")
        if not path.exists():
            self.smoke_kit.rebuild(name, self)
        return path

    def banner(self, notebook: str) -> str:
        """Prints one line naming the profile, device and dtype, and how to switch."""
        other = "full" if self.is_smoke else "smoke"
        where = "tiny offline models and fixtures" if self.is_smoke else "hub weights and real data"
        device, dtype = pick_device_dtype()
        line = (
            f"[{notebook}] profile={self.name} ({where}) on {device.type}/{str(dtype).removeprefix('torch.')}"
            f' - switch with PROFILE = "{other}" in this cell'
        )
        print(line)
        return line


def profile_name(setting: str = "auto") -> str:
    """A notebook's `PROFILE` ("smoke", "full"), or for "auto" `TUTORIAL_PROFILE`, else `full` in Colab and Kaggle
    even on a CPU (their learners want the real sites and data) or with CUDA, else `smoke`."""
    value = setting.strip().lower()
    if value not in ("auto", *PROFILES):
        raise ValueError(f"PROFILE = {setting!r} is not a profile; use one of 'auto', 'full', 'smoke'")
    if value == "auto":
        value = os.environ.get("TUTORIAL_PROFILE", "").strip().lower()
        if not value:
            return "full" if in_colab() or in_kaggle() or torch.cuda.is_available() else "smoke"
        if value not in PROFILES:
            raise ValueError(f"TUTORIAL_PROFILE={value!r} is not a profile; use one of {', '.join(PROFILES)}")
    return value


def _env_number(name: str, valid: Callable[[float], bool], wanted: str) -> float | None:
    """The number environment variable `name` holds, None when unset; a ValueError when it is not `wanted`."""
    value = os.environ.get(name, "").strip()
    try:
        number = float(value) if value else None
    except ValueError:
        number = math.nan
    if number is not None and not valid(number):
        raise ValueError(f"{name}={value!r} is not {wanted}")
    return number


def session_minutes_override() -> float | None:
    """`TUTORIAL_SESSION_MINUTES`: how long one session trains before it saves and stops (e.g. a longer paid
    session, or a short one to watch a run resume), for every chapter; None when unset."""
    return _env_number("TUTORIAL_SESSION_MINUTES", lambda m: m > 0, "a positive number of minutes")


def scale() -> float:
    """`TUTORIAL_SCALE` (0 < scale <= 1, default 1): the offline rehearsal's one knob, multiplying every step count
    and evaluation size of the full recipes so that their code runs in minutes on a CPU."""
    return _env_number("TUTORIAL_SCALE", lambda f: 0 < f <= 1, "a number in (0, 1]") or 1.0


CHECKPOINTS_KEPT = 1  # MiniGPT-v2's runs keep the last checkpoint only: resuming needs no other (05 §6)
MIN_EVAL_ROWS = 16  # a scaled evaluation keeps at least this many rows: a few per question type or class


def scaled(recipe: Recipe, factor: float) -> Recipe:
    """`recipe` with its epochs, steps and evaluation sizes multiplied by `factor` (steps kept >= 1, evaluation
    sizes >= MIN_EVAL_ROWS where set)."""
    if factor == 1:
        return recipe

    def times(value: int, least: int = 1) -> int:
        return max(min(value, least), math.ceil(value * factor)) if value > 0 else value

    return replace(
        recipe, epochs=times(recipe.epochs), max_steps=times(recipe.max_steps), save_steps=times(recipe.save_steps),
        warmup_steps=math.floor(recipe.warmup_steps * factor), schedule_steps=times(recipe.schedule_steps),
        eval_questions=times(recipe.eval_questions, MIN_EVAL_ROWS), validation_rows=times(recipe.validation_rows, MIN_EVAL_ROWS),
    )  # fmt: skip


def mirror_in_use() -> bool:
    """Whether `TUTORIAL_MIRROR` names a mirror (the offline rehearsal)."""
    return bool(os.environ.get("TUTORIAL_MIRROR", "").strip())


def mirrored(url: str) -> str:
    """`url` with its origin (scheme://host) replaced as the JSON file named by `TUTORIAL_MIRROR` maps it, else
    unchanged: the offline rehearsal's one seam, serving the outside world from 127.0.0.1."""
    if not mirror_in_use():
        return url
    path = os.environ["TUTORIAL_MIRROR"].strip()
    origins = json.loads(Path(path).read_text(encoding="utf-8"))
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin not in origins:
        raise ValueError(f"TUTORIAL_MIRROR={path} has no mirror of {origin} (for {url})")
    return origins[origin] + url[len(origin) :]


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and torch (every device) so runs repeat: what `transformers.set_seed` does, without
    importing its trainer utilities (and with them peft and bitsandbytes) in notebooks that never train."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the legacy global RNG, as transformers.set_seed seeds it)
    torch.manual_seed(seed)


def pick_device_dtype() -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 on Ampere and newer, fp16 on older GPUs such as the T4; CPU with fp32."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), torch.float32
    # Capability, not is_bf16_supported(): the latter also reports emulated bf16 on a T4 (sm_75).
    major, _ = torch.cuda.get_device_capability()
    return torch.device("cuda"), torch.bfloat16 if major >= 8 else torch.float16


def device_map() -> dict[str, int | str]:
    """Where `from_pretrained` puts a whole model: this process's GPU (`LOCAL_RANK`, set by `accelerate launch`,
    torchrun and `notebook_launcher`: appendix A2), else the current GPU, else the CPU."""
    if not torch.cuda.is_available():
        return {"": "cpu"}
    return {"": int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))}


def gpu_gib() -> float | None:
    """GiB of memory the CUDA GPU has (total), or None without one."""
    return torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else None


def llm_bits(run: str) -> int:
    """Bits of MiniGPT-v2's quantized LLM: 4 (NF4) for a one-session run on a GPU; 8 (LLM.int8, the tutorial's) to
    reproduce, and on a CPU, where bitsandbytes' 4-bit layers have no backward."""
    return 4 if torch.cuda.is_available() and run == "one-session" else 8


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def in_kaggle() -> bool:
    """True inside a Kaggle notebook (Kaggle sets KAGGLE_KERNEL_RUN_TYPE in its kernels)."""
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE"))


def outputs_root() -> Path:
    """`TUTORIAL_OUTPUT_DIR` if set, else Drive in Colab (mounted on first use), `/kaggle/working/outputs` in Kaggle
    (what a saved Kaggle version keeps), else `outputs/`."""
    if override := os.environ.get("TUTORIAL_OUTPUT_DIR"):
        return Path(override)
    if in_kaggle():
        return KAGGLE_OUTPUTS
    if in_colab():
        if not DRIVE_MOUNT.joinpath("MyDrive").exists():
            from google.colab import drive

            drive.mount(str(DRIVE_MOUNT))
        return DRIVE_OUTPUTS
    return REPO_ROOT / "outputs"


def hf_token() -> str | None:
    """The Hugging Face token from Colab's or Kaggle's secrets (`HF_TOKEN`) or the environment; None if absent.
    A secret the notebook may not read raises, saying how to grant it. The project never prints or stores it."""
    token = None
    if in_colab():
        from google.colab import userdata

        try:
            token = userdata.get("HF_TOKEN")
        except userdata.SecretNotFoundError:
            pass
        except userdata.NotebookAccessError as error:
            raise PermissionError(
                "the HF_TOKEN secret exists but this notebook may not read it: open Secrets (the key icon on the "
                "left), switch on 'Notebook access' for HF_TOKEN, then run this cell again"
            ) from error
    if not token and in_kaggle():
        from kaggle_secrets import BackendError, CredentialError, UserSecretsClient

        try:
            token = UserSecretsClient().get_secret("HF_TOKEN")
        except BackendError:  # no secret of that name
            pass
        except CredentialError as error:
            raise PermissionError(
                "Kaggle would not give this notebook the HF_TOKEN secret: Add-ons -> Secrets, tick HF_TOKEN for this "
                "notebook, then run this cell again"
            ) from error
    return token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def hub_api() -> HfApi:
    """The Hub client; `HF_ENDPOINT` (read when called) names another Hub, such as a stand-in on 127.0.0.1."""
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)


def hub_commit(repo_id: str, repo_type: str = "model") -> str:
    """The commit `repo_id`'s main branch is at on the Hub now (a model's, or a dataset's with repo_type="dataset")."""
    return hub_api().repo_info(repo_id, repo_type=repo_type, token=hf_token()).sha


def can_write(identity: dict) -> bool:
    """Whether a `whoami` answer's token may create and write repositories: role "write", or a fine-grained
    token holding "repo.write" (globally or on some scope)."""
    access = identity.get("auth", {}).get("accessToken", {})
    if access.get("role") == "write":
        return True
    grants = access.get("fineGrained", {})
    scoped = [permission for scope in grants.get("scoped", []) for permission in scope.get("permissions", [])]
    return "repo.write" in [*grants.get("global", []), *scoped]


def hub_upload_target(current: Profile, repo_name: str) -> tuple[str, str] | None:
    """(`<your user>/<repo_name>`, token) when uploads can run (full profile, a token with write access); else
    prints one line saying why not and returns None."""
    token = hf_token()
    if current.is_smoke or token is None:
        reason = "smoke profile (offline)" if current.is_smoke else "no Hugging Face token"
        print(f"push_to_hub skipped: {reason}. Add an HF_TOKEN secret (write access) to upload.")
        return None
    identity = hub_api().whoami(token=token)
    if not can_write(identity):
        print(
            "push_to_hub skipped: the HF_TOKEN token is read-only. Make a token with write access to upload."
        )
        return None
    return f"{identity['name']}/{repo_name}", token


def token_status() -> str:
    """Whether a Hugging Face token is available and what it is needed for, without revealing it."""
    if hf_token():
        return "Hugging Face token: found (hidden)"
    return (
        "Hugging Face token: none. Gated models (Llama-2 in notebooks 05 and 06) cannot download and hub uploads"
        " are skipped: add an HF_TOKEN secret (Colab) or environment variable"
    )
