"""Code the chapters teach and later chapters reuse, exported from their cells marked `# @save` by
`python -m tools.export` (one module per notebook; tests/test_export.py fails when one is stale)."""
