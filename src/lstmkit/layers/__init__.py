"""Layers: each owns params and grads, with explicit forward and backward."""
from .base import Layer, LAYER_REGISTRY, layer_from_config, serialize_layer
from .recurrent import RNNLayer, SimpleRNN, LSTM, GRU
from .bidirectional import Bidirectional
from .stack import RNNStack
