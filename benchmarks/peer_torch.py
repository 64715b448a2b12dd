"""PyTorch side: the same network with the same weights, trained with Adam.

Run with flush_denormal False (PyTorch's default) and True; the flag is set for
the measurement and turned off again afterwards, so the other frameworks in the
process never run with denormals flushed.
"""
import contextlib

import numpy as np
import torch
from torch import nn

RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


class TorchNet(nn.Module):
    def __init__(self, net, w):
        super().__init__()
        self.per_step = net.per_step
        self.emb = nn.Embedding(net.vocab, net.embed) if net.vocab else None
        self.rnn = RNN_CLASSES[net.cell](net.embed, net.units, num_layers=net.layers, batch_first=True)
        self.dense = nn.Linear(net.units, net.out)
        with torch.no_grad():
            if self.emb is not None:
                self.emb.weight.copy_(_t(w["embedding"]))
            for i, layer in enumerate(w["rnn"]):
                getattr(self.rnn, f"weight_ih_l{i}").copy_(_t(layer["W_x"].T))
                getattr(self.rnn, f"weight_hh_l{i}").copy_(_t(layer["W_h"].T))
                getattr(self.rnn, f"bias_ih_l{i}").copy_(_t(layer["b_x"]))
                b_h = layer.get("b_h")
                getattr(self.rnn, f"bias_hh_l{i}").copy_(_t(b_h) if b_h is not None else 0.0)
            self.dense.weight.copy_(_t(w["dense"]["W"].T))
            self.dense.bias.copy_(_t(w["dense"]["b"]))

    def forward(self, x):
        h = self.rnn(self.emb(x))[0]                       # (B, T, H)
        return self.dense(h if self.per_step else h[:, -1])


def _loss(net, logits, y):
    if net.per_step:
        return nn.functional.cross_entropy(logits.reshape(-1, net.out), y.reshape(-1))
    return nn.functional.binary_cross_entropy_with_logits(logits, y)


def runner(case, w, x, y):
    """A callable for one timed call of the case."""
    net = case.net
    if case.kind == "step":
        return _step_runner(case, w, x)
    model = TorchNet(net, w)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if case.kind == "infer":
        model.eval()

        def infer():
            with torch.inference_mode():
                out = model(xt)
                return torch.softmax(out, -1) if net.per_step else torch.sigmoid(out)
        return infer
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    model.train()

    def train():
        opt.zero_grad(set_to_none=True)
        loss = _loss(net, model(xt), yt)
        loss.backward()
        opt.step()
        return loss.detach()
    return train


def _step_runner(case, w, x):
    """C: nn.LSTMCell (faster than nn.LSTM on a length-1 sequence), state fed back."""
    layer, H = w["rnn"][0], case.net.units
    cell = nn.LSTMCell(case.net.embed, H)
    with torch.no_grad():
        cell.weight_ih.copy_(_t(layer["W_x"].T))
        cell.weight_hh.copy_(_t(layer["W_h"].T))
        cell.bias_ih.copy_(_t(layer["b_x"]))
        cell.bias_hh.zero_()
    xt = torch.from_numpy(x)
    state = [(torch.zeros(x.shape[0], H), torch.zeros(x.shape[0], H))]

    def step():
        with torch.inference_mode():
            state[0] = cell(xt, state[0])
        return state[0]
    return step


@contextlib.contextmanager
def flush_denormal(on):
    torch.set_flush_denormal(bool(on))
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def versions():
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_parallel": torch.__config__.parallel_info().splitlines()[-1].strip()}
