"""Caption drafts (a plain template, or a captioner prompted with the dish) and a widget to review them into a JSONL log."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from helpers import images, jsonl, runtime, vi_text
from helpers.bad_input import BadInput

GLOSSARY_PATH = runtime.DATA_DIR / "caption_glossary.json"
TEMPLATE_EN = "A photo of {name_en} ({name_vi}), {gloss_en}{with_ingredients}."
TEMPLATE_VI = "Ảnh món {name_vi}{with_ingredients}."
MAX_INGREDIENTS = 3
DECISIONS = ("approved", "rejected")
THUMBNAIL_SIDE = 384


@dataclass(frozen=True)
class Dish:
    """One accepted dish (keyed by its slug, the ClassLabel name): Vietnamese and English names, a short gloss."""

    name_vi: str
    name_en: str
    gloss_en: str


@dataclass(frozen=True)
class Glossary:
    """The template's inputs: dishes in ClassLabel order and Vietnamese ingredient words with English."""

    dishes: dict[str, Dish]
    ingredients: dict[str, str]


TEMPLATE = "template"  # `Draft.drafted_by` of template drafts; captioner drafts name the model


@dataclass(frozen=True)
class Draft:
    """A caption in both languages, the ingredient words it could not translate, and its drafter."""

    caption: str
    caption_vi: str
    untranslated: list[str]
    drafted_by: str = TEMPLATE


@dataclass(frozen=True)
class Decision:
    """One review decision as stored in the JSONL log (the last line for an id wins)."""

    id: str
    decision: str
    caption: str
    caption_vi: str
    draft_caption: str
    draft_caption_vi: str
    decided_at: str


@dataclass(frozen=True)
class ReviewItem:
    """What the reviewer sees for one record: its image, its draft and the scraped text behind it."""

    id: str
    image_path: Path
    draft: Draft
    context: str


def load_glossary(path: Path = GLOSSARY_PATH) -> Glossary:
    """Read the dish list and ingredient glossary (see `data/caption_glossary.json`)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    dishes = {slug: Dish(**fields) for slug, fields in raw["dishes"].items()}
    ingredients = {vi_text.folded(k): v for k, v in raw["ingredients"].items()}
    return Glossary(dishes=dishes, ingredients=ingredients)


def _join(items: Sequence[str], conjunction: str) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def find_ingredients(text: str, glossary: Glossary) -> list[str]:
    """Glossary words found in `text`, in order, longest match first ('mắm tôm' before 'tôm')."""
    keys = sorted(glossary.ingredients, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(k) for k in keys) + r")(?!\w)")
    return [m.group(1) for m in pattern.finditer(vi_text.folded(text))]


def draft_caption(record: Mapping[str, Any], glossary: Glossary) -> Draft:
    """Fill the templates from the dish's names and up to three ingredients (from the list, then the text); the
    dish's own name is removed before matching, so 'bún bò' does not add 'beef' twice."""
    dish = glossary.dishes[record["dish"]]
    name = vi_text.folded(record["dish_name"])
    found: list[str] = []
    untranslated: list[str] = []
    for ingredient in record["ingredients"]:
        hits = find_ingredients(vi_text.folded(ingredient).replace(name, " "), glossary)
        found += hits
        if not hits:
            untranslated.append(ingredient)
    found += find_ingredients(vi_text.folded(record["text_vi"]).replace(name, " "), glossary)
    chosen: list[str] = []
    english: list[str] = []
    for word in found:
        meaning = glossary.ingredients[word]
        if meaning not in english and meaning not in dish.gloss_en and len(chosen) < MAX_INGREDIENTS:
            chosen.append(word)
            english.append(meaning)
    caption = TEMPLATE_EN.format(
        name_en=dish.name_en,
        name_vi=record["dish_name"],
        gloss_en=dish.gloss_en,
        with_ingredients=f", with {_join(english, 'and')}" if english else "",
    )
    with_vi = f" với {_join(chosen, 'và')}" if chosen else ""
    caption_vi = TEMPLATE_VI.format(name_vi=record["dish_name"], with_ingredients=with_vi)
    return Draft(caption=caption, caption_vi=caption_vi, untranslated=untranslated)


def captioner_prompt(record: Mapping[str, Any], glossary: Glossary) -> str:
    """What a pre-trained English captioner is prompted with, so it describes the photo of a known dish."""
    return f"a photo of {glossary.dishes[record['dish']].name_en}, "


def captioner_draft(record: Mapping[str, Any], glossary: Glossary, continuation: str, model_id: str) -> Draft:
    """The captioner's words after the dish prompt as the English draft; the Vietnamese one stays the template's
    (no Vietnamese captioner is at hand), so the reviewer sees both and edits them together."""
    words = " ".join(continuation.split()).strip(" ,")
    if not words:
        raise BadInput(f"record {record['id']!r}: {model_id} wrote nothing after the prompt")
    template = draft_caption(record, glossary)
    caption = f"{captioner_prompt(record, glossary)}{words}".strip()
    return Draft(caption[0].upper() + caption[1:], template.caption_vi, [], model_id)


class ReviewLog:
    """Append-only JSONL of decisions (`helpers.jsonl`): each is fsynced at once, so a restart loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Decision]:
        """The latest decision per id; a bad line raises (file:line), one cut short by a kill is dropped."""
        numbered, cut = jsonl.read_numbered(self.path, repair=True)
        if cut:
            print(f"{self.path}: dropped a last line cut short mid-write; review that item again")
        decisions: dict[str, Decision] = {}
        for number, record in numbered:
            try:
                decision = Decision(**record)
            except TypeError as error:
                raise BadInput(f"{self.path}:{number}: not a review decision ({error})") from None
            if decision.decision not in DECISIONS:
                raise BadInput(f"{self.path}:{number}: decision must be one of {DECISIONS}")
            decisions[decision.id] = decision
        return decisions

    def record(self, item: ReviewItem, decision: str, caption: str, caption_vi: str) -> Decision:
        """Append one decision and flush it to disk before returning."""
        if decision not in DECISIONS:
            raise BadInput(f"decision must be one of {DECISIONS}, not {decision!r}")
        entry = Decision(
            id=item.id,
            decision=decision,
            caption=caption.strip(),
            caption_vi=caption_vi.strip(),
            draft_caption=item.draft.caption,
            draft_caption_vi=item.draft.caption_vi,
            decided_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        jsonl.append(self.path, asdict(entry))
        return entry


def thumbnail_bytes(path: Path, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG thumbnail for the widget, the image opened within the pixel limit."""
    with images.open_checked(path, str(path)) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@dataclass
class CaptionReviewer:
    """Image, draft, editable captions, approve/reject, previous/next and progress; opens at the first undecided item."""

    items: Sequence[ReviewItem]
    log: ReviewLog
    decisions: dict[str, Decision] = field(init=False)
    index: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not self.items:
            raise BadInput("nothing to review: the list of items is empty")
        self.decisions = self.log.load()
        self.image = widgets.Image(format="jpeg", layout={"max_width": f"{THUMBNAIL_SIDE}px"})
        self.info = widgets.HTML()
        self.caption = widgets.Textarea(description="caption", layout={"width": "95%", "height": "70px"})
        self.caption_vi = widgets.Textarea(
            description="caption_vi", layout={"width": "95%", "height": "50px"}
        )
        self.approve_button = widgets.Button(description="Approve", button_style="success", icon="check")
        self.reject_button = widgets.Button(description="Reject", button_style="danger", icon="times")
        self.previous_button = widgets.Button(description="Previous", icon="arrow-left")
        self.next_button = widgets.Button(description="Next", icon="arrow-right")
        self.progress = widgets.IntProgress(min=0, max=len(self.items))
        self.status = widgets.Label()
        self.approve_button.on_click(lambda _: self.decide("approved"))
        self.reject_button.on_click(lambda _: self.decide("rejected"))
        self.previous_button.on_click(lambda _: self.show(self.index - 1))
        self.next_button.on_click(lambda _: self.show(self.index + 1))
        buttons = [self.previous_button, self.approve_button, self.reject_button, self.next_button]
        top = widgets.HBox([self.progress, self.status])
        self.widget = widgets.VBox(
            [top, self.image, self.info, self.caption, self.caption_vi, widgets.HBox(buttons)]
        )
        undecided = [i for i, item in enumerate(self.items) if item.id not in self.decisions]
        self.show(undecided[0] if undecided else 0)

    def show(self, index: int) -> None:
        """Display item `index` (clamped), with its saved caption if decided, else its draft."""
        self.index = max(0, min(index, len(self.items) - 1))
        item = self.items[self.index]
        saved = self.decisions.get(item.id)
        self.image.value = thumbnail_bytes(item.image_path)
        self.caption.value = saved.caption if saved else item.draft.caption
        self.caption_vi.value = saved.caption_vi if saved else item.draft.caption_vi
        untranslated = ", ".join(item.draft.untranslated) or "none"
        self.info.value = (
            f"<b>{html.escape(item.id)}</b> · {'saved: ' + saved.decision if saved else 'not reviewed yet'}<br>"
            f"<small>{html.escape(item.context)}<br>untranslated ingredients: {html.escape(untranslated)}</small>"
        )
        done = sum(item.id in self.decisions for item in self.items)
        self.progress.value = done
        self.status.value = f"{done}/{len(self.items)} reviewed · showing {self.index + 1}/{len(self.items)}"

    def decide(self, decision: str) -> None:
        """Save the current item's decision to the log, then move to the next item."""
        item = self.items[self.index]
        if decision == "approved" and not self.caption.value.strip():
            self.status.value = f"{item.id}: the caption is empty; write one or reject the image"
            return
        self.decisions[item.id] = self.log.record(item, decision, self.caption.value, self.caption_vi.value)
        self.show(self.index + 1)
