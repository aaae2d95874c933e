"""Metrics layer: captions, VQA answers, boxes, bootstrap intervals, and scoring of predictions files."""
