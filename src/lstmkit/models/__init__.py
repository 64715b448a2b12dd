"""Models: Sequential, its training loop and its one-file persistence."""
from .sequential import Sequential
from .saving import save_model, load_model
