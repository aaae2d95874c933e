"""The full profile's offline rehearsal (README "Rehearsal"): Hub, Drive, GitHub and the two sites stood in on
127.0.0.1 by files this module makes, named to the notebooks by `TUTORIAL_MIRROR` and `HF_ENDPOINT` only (and
`HF_HUB_DISABLE_XET`: Xet storage has no stand-in)."""

from __future__ import annotations

import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from transformers import Blip2Config, LlamaConfig

from helpers import runtime
from helpers.data import caption_review, dish_dataset, dish_fallback, iconqa, mvtec, scraping, vivqa
from helpers.models import minigpt_v2, minigpt_v2_checkpoint
from helpers.smoke import (
    icon_scenes,
    mvtec_fixtures,
    scrape_fixtures,
    synthetic_stage3,
    tiny_models,
    vivqa_fixtures,
)
from stand_ins import hub_stand_in

# TUTORIAL_SCALE: 800 training steps become 8, 400 evaluation questions 16 (runtime.MIN_EVAL_ROWS).
SCALE = 0.01
DRIVE = "https://drive.google.com"
GITHUB_RAW = "https://raw.githubusercontent.com"


def publish_hub(root: Path) -> None:
    """The tiny stand-ins under the full profile's repo ids, and IconQA's Hub copy as parquet files."""
    for key in ("blip2", "blip-vqa", "llama-2-chat", "qwen3-vl"):  # "minigpt-vision" reads the BLIP-2 repo
        hub_stand_in.publish(root, runtime.HUB_MODELS[key], tiny_models.build_hub_shaped(key))
    copy = icon_scenes.hub_like_dataset(n=48)
    folder = root / "staging" / iconqa.HUB_REPO
    for split, table in copy.items():
        (folder / "data").mkdir(parents=True, exist_ok=True)
        table.to_parquet(folder / "data" / f"{split}-00000-of-00001.parquet")
    hub_stand_in.publish(root, iconqa.HUB_REPO, folder, repo_type="dataset")
    write_vn_foods_archive(
        root / "staging" / dish_fallback.REPO / dish_fallback.ARCHIVE,
        per_class=dish_fallback.PHOTOS_PER_DISH + 4,
    )
    hub_stand_in.publish(root, dish_fallback.REPO, root / "staging" / dish_fallback.REPO, repo_type="dataset")
    shutil.rmtree(root / "staging")


# The stand-in of 30VNFoods' folders: the series' three dishes (as the real archive spells them) and two others.
VN_FOODS_CLASSES = {"Banh beo": "banh-beo", "Bun bo Hue": "bun-bo-hue", "Bun dau mam tom": "bun-dau-mam-tom",
                    "Banh mi": "banh-beo", "Pho": "bun-bo-hue"}  # fmt: skip


def write_vn_foods_archive(path: Path, per_class: int) -> Path:
    """A zip laid out as `vuongnhathien/30VNFoods`' split archives: `validation/<Dish name>/<n>.jpg`, drawn photos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for k, (folder, drawn) in enumerate(VN_FOODS_CLASSES.items()):
            for n in range(per_class):
                archive.writestr(
                    f"validation/{folder}/{n:04d}.jpg", scrape_fixtures.photo_bytes(drawn, 1000 * k + n)
                )
    return path


def _stage3_config() -> minigpt_v2.MiniGPTv2Config:
    """The stand-in MiniGPT-v2's config (vision at 448 px), to shape the released checkpoint's stand-in."""
    vision = Blip2Config.from_pretrained(tiny_models.build_hub_shaped("blip2")).vision_config
    vision.image_size = 448
    text = LlamaConfig.from_pretrained(tiny_models.build_hub_shaped("llama-2-chat"))
    return minigpt_v2.MiniGPTv2Config(vision_config=vision, text_config=text)


def write_downloads(root: Path) -> None:
    """What the full profile downloads, in its real formats, under `root/<host>/<path>` (Drive files by id)."""
    drive = root / "drive.google.com"
    drive.mkdir(parents=True, exist_ok=True)
    staging = root / "staging"
    vivqa_fixtures.write_fixture(staging / "vivqa", n_images=600, row_counts=vivqa.EXPECTED_ROWS)
    csvs = root / "raw.githubusercontent.com" / vivqa.REPOSITORY_RAW.removeprefix(f"{GITHUB_RAW}/")
    csvs.mkdir(parents=True, exist_ok=True)
    for split in vivqa.EXPECTED_ROWS:
        shutil.move(staging / "vivqa" / f"{split}.csv", csvs / f"{split}.csv")
    shutil.move(staging / "vivqa" / vivqa.IMAGES_ZIP, drive / vivqa.IMAGES_DRIVE_ID)
    mvtec_fixtures.write_tutorial_zip(staging / "mvtec", per_category=12)
    shutil.move(staging / "mvtec" / mvtec.ZIP_NAME, drive / mvtec.DRIVE_ID)
    synthetic_stage3.write(_stage3_config(), drive / minigpt_v2_checkpoint.STAGE3_DRIVE_ID)
    shutil.rmtree(staging)


class _Mirror(BaseHTTPRequestHandler):
    """GET /<host>/<path> answers root/<host>/<path>; Drive's /drive.google.com/uc?id=ID answers its file."""

    root: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        path = self.root / parts.path.lstrip("/")
        if parts.path == "/drive.google.com/uc":
            path = self.root / "drive.google.com" / parse_qs(parts.query).get("id", [""])[0]
        if not path.is_file() or not path.resolve().is_relative_to(self.root.resolve()):
            self.send_error(404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet: the notebooks say what they download."""


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class World:
    """The running stand-ins: the environment a notebook kernel needs, and the Hub to inspect afterwards."""

    root: Path
    env: dict[str, str]
    hub: hub_stand_in.StandInHub


@contextmanager
def world(root: Path) -> Iterator[World]:
    """Build the stand-ins under `root` (once), serve them on 127.0.0.1 while the block runs, and give the full
    profile's environment: outputs on a Drive stand-in folder, data on the local disk, the scale knob."""
    root = Path(root)
    if not (root / "mirror").exists():
        write_downloads(root / "mirror-staging")
        (root / "mirror-staging").rename(root / "mirror")
    if not (root / "hub").exists():
        publish_hub(root / "hub-staging")
        (root / "hub-staging").rename(root / "hub")
    handler = type("Mirror", (_Mirror,), {"root": root / "mirror"})
    config = scraping.load_config()
    with (
        _serving(handler) as mirror,
        scrape_fixtures.serve_fixture_site(config) as sites,
        hub_stand_in.StandInHub(root / "hub", gated={runtime.HUB_MODELS["llama-2-chat"]}) as hub,
    ):
        origins = {DRIVE: f"{mirror}/drive.google.com", GITHUB_RAW: f"{mirror}/raw.githubusercontent.com"}
        origins |= {config["sites"][name]["base_url"]: url for name, url in sites.base_urls.items()}
        (root / "mirror.json").write_text(json.dumps(origins, indent=1), encoding="utf-8")
        env = {
            "TUTORIAL_PROFILE": "full",
            "TUTORIAL_SCALE": str(SCALE),
            "TUTORIAL_MIRROR": str(root / "mirror.json"),
            **hub.env,  # HF_ENDPOINT, and uploads without Xet storage (no stand-in of it exists)
            "HF_HOME": str(root / "hf-home"),
            "TUTORIAL_OUTPUT_DIR": str(root / "drive"),
            "TUTORIAL_DATA_DIR": str(root / "local-disk"),
        }
        yield World(root, env, hub)


def write_review_log(current: runtime.Profile, reject: int = 1, edit: int = 1) -> Path:
    """Notebook 02's human review, supplied in advance: `reject` photos rejected, `edit` captions rewritten, the
    rest approved as drafted, written through the review widget's own log."""
    manifest = current.output_dir("scraped") / "manifest.jsonl"
    glossary = caption_review.load_glossary()
    checked = dish_dataset.check_manifest(manifest, glossary)
    drafts = {r["id"]: caption_review.draft_caption(r, glossary) for r in checked.records}
    log = caption_review.ReviewLog(dish_dataset.review_log_path(current))
    for k, item in enumerate(dish_dataset.review_items(checked, drafts)):
        if k < reject:
            log.record(item, "rejected", item.draft.caption, item.draft.caption_vi)
        elif k < reject + edit:
            log.record(item, "approved", f"a close-up of {item.draft.caption}", item.draft.caption_vi)
        else:
            log.record(item, "approved", item.draft.caption, item.draft.caption_vi)
    return log.path
