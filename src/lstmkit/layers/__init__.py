"""Layers: each owns params and grads, with explicit forward and backward."""
from .base import Layer, LAYER_REGISTRY, layer_from_config, serialize_layer
from .recurrent import RNNLayer, SimpleRNN, LSTM, GRU
from .cell import Cell, StackedRNNCells, register_cell, CELL_REGISTRY
from .rnn_cells import SimpleRNNCell, LSTMCell, GRUCell
from .rnn import RNN
from .bidirectional import Bidirectional
from .stack import RNNStack
from .embedding import Embedding
from .dense import Dense
from .dropout import Dropout
from .flatten import Flatten
from .symbolic import Input, InputLayer, SymbolicTensor
from .merge import (Concatenate, Add, Subtract, Average, Multiply, Dot, concatenate, add, subtract,
                    average, multiply, dot)
from .repeat_vector import RepeatVector
from .cropping import Cropping1D
from .time_distributed import TimeDistributed
from .attention import Attention, AdditiveAttention
