"""Vietnamese text normalisation, one function per use: NFC for scorers, cleaning what is read, folding for lookups,
keys for matching answers and questions (07 §1 explains the VQA one)."""

from __future__ import annotations

import re
import unicodedata

INVISIBLE = re.compile(
    r"[\u200b-\u200d\u2060\ufeff]"
)  # zero-width characters: six real ViVQA questions hold two
SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    """Unicode NFC: Vietnamese typed on different keyboards mixes composed and decomposed accents."""
    return unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """What a reader keeps: NFC, zero-width characters dropped, runs of whitespace to one space, stripped."""
    return SPACES.sub(" ", INVISIBLE.sub("", unicodedata.normalize("NFC", text or ""))).strip()


def folded(text: str) -> str:
    """For case-blind lookups and tokens: NFC, casefolded, NFC again (casefolding can decompose a letter)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def unaccented(text: str) -> str:
    """Vietnamese without tone marks and diacritics, as folder names often spell it: "Bún đậu" -> "Bun dau"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def match_key(text: str) -> str:
    """What two answers (or questions) must share to match: `clean`, `folded`, every Unicode punctuation mark
    (category P*) to a space, whitespace collapsed."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded(clean(text)))
    return SPACES.sub(" ", text).strip()
