"""Elementwise nonlinearities shared by the reference cells.

sigmoid is written as 0.5 * tanh(x / 2) + 0.5: the same function as
1 / (1 + exp(-x)), but it never overflows for large |x| and it is the form the
fast kernels use, so both engines round the same way.
"""
import numpy as np


def sigmoid(x):
    return 0.5 * np.tanh(0.5 * x) + 0.5


def dsigmoid_from_output(y):
    # d sigmoid / dx expressed through its output y = sigmoid(x)
    return y * (1.0 - y)


def dtanh_from_output(y):
    # d tanh / dx expressed through its output y = tanh(x)
    return 1.0 - y * y


def relu(x):
    return np.maximum(x, 0.0)


ACTIVATIONS = {"tanh": np.tanh, "relu": relu}
