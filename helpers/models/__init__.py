"""Model layer: published architectures and audits, the MiniGPT-v2 port and its visual-token merger."""
