"""Run profile, seeding, device and dtype, output folders and secrets: the one place notebooks ask."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import transformers
from huggingface_hub import whoami

PROFILES = ("smoke", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DRIVE_MOUNT = Path("/content/drive")
DRIVE_OUTPUTS = DRIVE_MOUNT / "MyDrive" / "vi-vlm-tutorials" / "outputs"
# Decompression-bomb limit for every image the series reads, checked from the header before decoding.
MAX_IMAGE_PIXELS = 40_000_000


def get_profile() -> str:
    """`TUTORIAL_PROFILE` if set (smoke|full), else `full` when CUDA is available and `smoke` otherwise."""
    value = os.environ.get("TUTORIAL_PROFILE", "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "smoke"
    if value not in PROFILES:
        raise ValueError(f"TUTORIAL_PROFILE={value!r} is not a profile; use one of {', '.join(PROFILES)}")
    return value


def is_smoke() -> bool:
    """True when the offline smoke profile runs."""
    return get_profile() == "smoke"


def banner(notebook: str) -> str:
    """One line naming the profile that runs and how to switch; printed by every notebook."""
    profile = get_profile()
    other = "full" if profile == "smoke" else "smoke"
    where = "tiny offline models and fixtures" if profile == "smoke" else "hub weights, real data, GPU"
    device, dtype = pick_device_dtype()
    line = (
        f"[{notebook}] profile={profile} ({where}) on {device.type}/{str(dtype).removeprefix('torch.')}"
        f" - switch with TUTORIAL_PROFILE={other} before starting the kernel"
    )
    print(line)
    return line


def seed_everything(seed: int = 42) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so runs repeat."""
    transformers.set_seed(seed)


def pick_device_dtype() -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 on Ampere and newer, fp16 on older GPUs such as the T4; CPU with fp32."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), torch.float32
    # Capability, not is_bf16_supported(): the latter also reports emulated bf16 on a T4 (sm_75).
    major, _ = torch.cuda.get_device_capability()
    return torch.device("cuda"), torch.bfloat16 if major >= 8 else torch.float16


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def output_dir(*parts: str) -> Path:
    """A created folder under the outputs root: Drive in Colab (survives a disconnect), `outputs/` locally.

    `TUTORIAL_OUTPUT_DIR` overrides the root anywhere.
    """
    override = os.environ.get("TUTORIAL_OUTPUT_DIR")
    if override:
        root = Path(override)
    elif in_colab():
        if not DRIVE_MOUNT.joinpath("MyDrive").exists():
            from google.colab import drive

            drive.mount(str(DRIVE_MOUNT))
        root = DRIVE_OUTPUTS
    else:
        root = REPO_ROOT / "outputs"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def hf_token() -> str | None:
    """The Hugging Face token from Colab secrets (`HF_TOKEN`) or the environment; None if absent.

    Pass it straight to the call that needs it; the project never prints or stores it.
    """
    if in_colab():
        from google.colab import userdata

        try:
            token = userdata.get("HF_TOKEN")
        except (userdata.SecretNotFoundError, userdata.NotebookAccessError):
            token = None
        if token:
            return token
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def hub_upload_target(repo_name: str) -> tuple[str, str] | None:
    """(`<your user>/<repo_name>`, token) when uploads can run (full profile with a token); else says why not."""
    token = hf_token()
    if is_smoke() or token is None:
        reason = "smoke profile (offline)" if is_smoke() else "no Hugging Face token"
        print(f"push_to_hub skipped: {reason}. Add an HF_TOKEN secret (write access) to upload.")
        return None
    return f"{whoami(token=token)['name']}/{repo_name}", token


def token_status() -> str:
    """Whether a Hugging Face token is available, without revealing it."""
    return (
        "Hugging Face token: found (hidden)"
        if hf_token()
        else "Hugging Face token: none (hub uploads skipped)"
    )
