"""Shared logic for the Vietnamese vision-language tutorial notebooks."""

from helpers import library_noise  # noqa: F401  (before any helper imports bitsandbytes or peft)
