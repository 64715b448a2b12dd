"""Conversion to and from other libraries and formats.

    lstmkit.interop.torch        from_torch / to_torch for torch.nn.LSTM, GRU, RNN.
    lstmkit.interop.onnx         export_onnx / to_onnx: a model as an ONNX graph of the
                                 standard LSTM, GRU and RNN operators.
    lstmkit.interop.onnx_import  from_onnx (also lk.from_onnx): such a graph back into a model.

torch, onnx and onnxruntime are optional: each is imported by the module that
needs it, never here.
"""
