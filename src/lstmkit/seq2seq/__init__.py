"""Sequence to sequence: an encoder-decoder with attention (model.py,
attention.py), its loss and training loop, greedy and beam-search decoding."""
from .attention import GlobalAttention
from .model import Seq2Seq, Encoded, shift_right
