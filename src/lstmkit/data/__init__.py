"""Data tools for the applications: tokenizers, readers, windows, corpora."""
