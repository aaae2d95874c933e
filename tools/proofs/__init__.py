"""The smoke profile's learning proofs: a tiny model trained with a chapter's own calls beats its blind baselines
and its image-shuffled control (appendix A1 §6; A2 and the tests run them too)."""
