"""lstmkit: recurrent neural networks from first principles.

    import lstmkit as lk
    model = lk.Sequential([lk.Embedding(10000, 32, input_length=500), lk.LSTM(32),
                           lk.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

or, functionally (several inputs and outputs, shared layers, attention):

    ids = lk.Input(shape=(500,), dtype="int32")
    out = lk.Dense(1, activation="sigmoid")(lk.LSTM(32)(lk.Embedding(10000, 32)(ids)))
    model = lk.Model(ids, out)
"""
__version__ = "0.1.0"

from .settings import config
from . import callbacks, datasets, gradcheck, initializers, losses, metrics, optimizers, schedules
from .layers import (Layer, SimpleRNN, LSTM, GRU, Bidirectional, RNNStack, Embedding, Dense, Dropout,
                     Flatten, Input, InputLayer, Concatenate, Add, Subtract, Average, Multiply, Dot,
                     RepeatVector, Cropping1D, TimeDistributed, Attention, AdditiveAttention)
from .layers import RNN, Cell, SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells, register_cell
from . import layers, models
from .models import Sequential, Model, save_model, load_model
from .optimizers import SGD, Adam, AdamW, RMSprop
from .losses import (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
                     MeanSquaredError, MeanAbsoluteError, Pinball)
from .callbacks import (Callback, History, EarlyStopping, ModelCheckpoint, CSVLogger,
                        LearningRateScheduler)
from .schedules import StepDecay, ExponentialDecay, CosineDecay
from .seq2seq import Seq2Seq          # registers it, so load_model reads translation models


def from_onnx(path):
    """An lstmkit model from an ONNX file of LSTM/GRU/RNN operators (lstmkit.interop.onnx_import)."""
    from .interop.onnx_import import from_onnx as _from_onnx
    return _from_onnx(path)
