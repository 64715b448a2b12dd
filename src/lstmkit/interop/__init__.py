"""Conversion to and from other libraries.

    lstmkit.interop.torch: from_torch / to_torch for torch.nn.LSTM, GRU, RNN.

torch is optional: it is imported by lstmkit.interop.torch only, never here.
"""
