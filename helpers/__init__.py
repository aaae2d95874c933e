"""Shared logic for the Vietnamese vision-language tutorial notebooks."""
