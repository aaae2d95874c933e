"""The first check of each GPU chapter (03-06 and 08 §0): the GPU and its free memory, free space where the downloads and
the outputs go, the token and access to each gated model; one clear error before anything downloads or loads."""

from __future__ import annotations

import math
import shutil

import torch
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

from helpers import runtime
from helpers.models import audit

# The models each chapter loads (runtime.HUB_MODELS keys), and the gated ones with where to accept their licence.
CHAPTER_MODELS = {
    "captioning": ("blip2",),
    "vqa": ("blip-vqa",),
    "vivqa": ("minigpt-vision", "llama-2-chat"),
    "defects": ("minigpt-vision", "llama-2-chat"),
    "qwen-vivqa": ("qwen3-vl",),
}
LICENCES = {"llama-2-chat": "https://huggingface.co/meta-llama/Llama-2-7b-chat-hf"}
SLACK_GB = 1.0  # room for caches, logs and predictions files
# Chapters whose checkpoints live on the local disk and reach Drive as copies (`training.CopyCheckpoints`); the
# others write theirs to the outputs folder, where each one Trainer rotates out goes to Drive's trash.
COPIED = ("vivqa", "defects")


def checkpoint_gb(chapter: str) -> float:
    """GiB of one checkpoint: the trained weights and AdamW's two moments, in fp32."""
    return audit.setup_of(chapter).trainable_params * 12 / audit.GB


def lifetime_gb(chapter: str, recipe: runtime.Recipe, every: int = 1) -> float:
    """GiB the run writes to the outputs folder in its life, replaced checkpoints too (Drive's trash keeps them): one
    per save (copied chapters: per `every`-th save, plus one per session), the fp32 adapter and some slack."""
    plan = audit.session_plan(chapter, recipe)
    copies = math.ceil(plan.saves / every) + plan.sessions - 1 if chapter in COPIED else plan.saves
    adapter_gb = audit.setup_of(chapter).trainable_params * 4 / audit.GB  # fp32 weights
    return copies * checkpoint_gb(chapter) + adapter_gb + SLACK_GB


def copy_every(chapter: str, recipe: runtime.Recipe, free_output_gb: float) -> int | None:
    """The fewest saves between two Drive copies that keeps the run's lifetime writes within `free_output_gb` (always
    1 for the chapters that write their checkpoints there); None when nothing fits."""
    saves = max(1, audit.session_plan(chapter, recipe).saves)
    return next((k for k in range(1, saves + 1) if lifetime_gb(chapter, recipe, k) <= free_output_gb), None)


def problems(chapter: str, recipe: runtime.Recipe, token: str | None, free_gpu_gb: float | None,
             free_data_gb: float, free_output_gb: float) -> list[str]:  # fmt: skip
    """What stops `chapter`'s full run, as sentences saying what to do; [] when nothing does. `free_gpu_gb` is None
    without a GPU."""
    found = []
    needed_gpu = audit.memory_estimate(audit.setup_of(chapter), checkpointing=True)["total"]
    if free_gpu_gb is not None and free_gpu_gb < needed_gpu:
        found.append(f"the GPU has {free_gpu_gb:.1f} GiB free and the run needs about {needed_gpu:.1f} GiB: restart"
                     " the session (Runtime -> Restart session) to free what an earlier model holds")  # fmt: skip
    downloads = audit.WORKLOADS[chapter].download_gb
    if free_data_gb < downloads:
        found.append(
            f"the data disk has {free_data_gb:.1f} GB free and the downloads need about {downloads:.1f} GB"
        )
    if copy_every(chapter, recipe, free_output_gb) is None:
        least = lifetime_gb(chapter, recipe, max(1, audit.session_plan(chapter, recipe).saves))
        found.append(f"the outputs folder has {free_output_gb:.1f} GiB free and the run writes at least {least:.1f}"
                     " GiB over its life (checkpoints replaced on Drive stay in its trash until emptied): empty Drive's"
                     " trash, free space on Drive, or set TUTORIAL_OUTPUT_DIR elsewhere")  # fmt: skip
    gated = [key for key in CHAPTER_MODELS[chapter] if key in LICENCES]
    if gated and token is None:
        found += [f"{runtime.HUB_MODELS[k]} is gated: accept its licence at {LICENCES[k]}, then add a Hugging Face "
                  "token as a Colab secret (or environment variable) named HF_TOKEN" for k in gated]  # fmt: skip
    elif gated:
        found += gated_access_problems(gated, token)
    return found


def gated_access_problems(keys: list[str], token: str) -> list[str]:
    """For each gated model the token cannot read, what to do; asks the Hub (HF_ENDPOINT when set)."""
    found = []
    for key in keys:
        repo_id = runtime.HUB_MODELS[key]
        try:
            runtime.hub_api().auth_check(repo_id, token=token)
        except GatedRepoError:
            found.append(f"your token cannot read {repo_id} yet: accept its licence at {LICENCES[key]} (approval can"
                         " take a while) with the account the token belongs to")  # fmt: skip
        except RepositoryNotFoundError:
            found.append(f"{repo_id} was not found with your token: check that HF_TOKEN is a valid token")
        # What the Hub answers for a token that is not one (revoked, mistyped).
        except HfHubHTTPError as error:
            if error.response is None or error.response.status_code != 401:
                raise
            found.append("the Hub refused HF_TOKEN as invalid (revoked or mistyped?): make a new one at"
                         " https://huggingface.co/settings/tokens and update the secret")  # fmt: skip
    return found


def drive_copy_every(profile: runtime.Profile, chapter: str, recipe: runtime.Recipe) -> int:
    """How many saves apart `training.CopyCheckpoints` copies to the outputs folder: 1 in the smoke profile, else
    `copy_every` for the folder's free space (the pre-flight has checked that one fits)."""
    if profile.is_smoke:
        return 1
    return copy_every(chapter, recipe, shutil.disk_usage(profile.output_dir()).free / audit.GB) or 1


def check(profile: runtime.Profile, chapter: str, recipe: runtime.Recipe) -> audit.SessionPlan | None:
    """Prints the facts and the plan, then raises RuntimeError listing every problem; the smoke profile has tiny
    local models and fixtures, so there is nothing to check. Returns the plan on the published data sizes."""
    if profile.is_smoke:
        print("pre-flight: smoke profile, tiny local models and fixtures: no GPU, download or token needed")
        return None
    free_gpu = torch.cuda.mem_get_info()[0] / audit.GB if torch.cuda.is_available() else None
    data_dir, output_dir = profile.data_dir(), profile.output_dir()
    free_data, free_output = (shutil.disk_usage(d).free / audit.GB for d in (data_dir, output_dir))
    plan = audit.session_plan(chapter, recipe)
    where = torch.cuda.get_device_name() if free_gpu is not None else "no GPU (the CPU will be very slow)"
    print(f"pre-flight: {where}; {free_gpu or 0:.1f} GiB GPU memory free; {free_data:.0f} GB free for downloads in"
          f" {data_dir}; {free_output:.0f} GiB free for outputs in {output_dir}")  # fmt: skip
    print(f"downloads about {audit.WORKLOADS[chapter].download_gb:.0f} GB; {plan}")
    if (every := copy_every(chapter, recipe, free_output)) is not None:
        print(f"outputs: the run writes about {lifetime_gb(chapter, recipe, every):.1f} GiB over its life, replaced"
              f" checkpoints included (Drive keeps them in its trash until emptied); a checkpoint is"
              f" {checkpoint_gb(chapter):.2f} GiB" + (f", copied to the outputs every {every} save(s)"
                                                     if chapter in COPIED else ""))  # fmt: skip
    found = problems(chapter, recipe, runtime.hf_token(), free_gpu, free_data, free_output)
    if found:
        raise RuntimeError("pre-flight found what would stop this run:\n- " + "\n- ".join(found))
    return plan
