"""Data layer: polite scraping, the dish manifest and dataset, caption review, downloads, ViVQA, predictions files."""
