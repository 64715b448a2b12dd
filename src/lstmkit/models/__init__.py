"""Models: Sequential, the functional Model, their training loop and one-file persistence."""
from .sequential import Sequential
from .saving import save_model, load_model
from .functional import Model
