"""The workloads of the benchmark: shapes, kinds and targets, nothing else.

A  the seeds' sentiment model: Embedding(10000, 32) -> RNN(32) -> Dense(1, sigmoid),
   length 500, batch 32 and 128; LSTM, GRU and SimpleRNN; training step and inference,
   the latter twice: as a trained model runs it (the embedding folded through the
   input kernel once, kept between calls) and "fresh" (folded again every call).
B  larger: Embedding(10000, 128) -> LSTM(512) -> Dense(1, sigmoid), length 100, batch 64.
C  streaming: one LSTM step, batch 1, input 32, hidden 32.
D  generation: Embedding(100, 100) -> LSTM(256) x 2 -> Dense(100) at every step,
   softmax cross-entropy over all steps, length 100, batch 64; training step.
E  translation: an LSTM encoder-decoder with attention (embedding 256, LSTM 256) on
   real Ding pairs of up to 20 subwords; a training step at batch 64, and beam search
   (beam 5) one sentence at a time.

A target is the least ratio (best peer median / lstmkit median) that counts as met.
"""
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Net:
    cell: str            # "lstm", "gru" or "rnn"
    vocab: int           # 0: no embedding, the input is float features of size `embed`
    embed: int           # embedding size (or input size without an embedding)
    units: int
    layers: int = 1
    per_step: bool = False   # Dense(vocab) + softmax at every step, else Dense(1) + sigmoid at the end

    @property
    def out(self):
        return self.vocab if self.per_step else 1


@dataclass(frozen=True)
class Case:
    id: str
    workload: str        # "A", "B", "C", "D"
    kind: str            # "train", "infer", "step" or "beam"
    net: Net
    batch: int
    length: int
    target: float
    repeats: int
    quick_repeats: int
    inner: int = 1       # calls per timed repeat (C: many steps, reported per step)
    fresh: bool = False  # inference with lstmkit's folded-table cache cleared before every call

    @property
    def unit(self):
        return "us" if self.kind == "step" else "ms"


def _a_cases():
    cases = []
    for cell in ("lstm", "gru", "rnn"):
        net = Net(cell, vocab=10000, embed=32, units=32)
        for batch in (32, 128):
            cases.append(Case(f"A-{cell}-b{batch}-train", "A", "train", net, batch, 500, 1.5, 15, 5))
            cases.append(Case(f"A-{cell}-b{batch}-infer", "A", "infer", net, batch, 500, 1.25, 21, 7))
            # the same, but no table kept between calls: every call folds the
            # embedding through W_x again, as the peers redo the gather and the
            # input product every call
            cases.append(Case(f"A-{cell}-b{batch}-infer-fresh", "A", "infer", net, batch, 500, 1.25,
                              21, 7, fresh=True))
    return cases


CASES = _a_cases() + [
    Case("B-lstm-train", "B", "train", Net("lstm", 10000, 128, 512), 64, 100, 1.0, 11, 5),
    Case("B-lstm-infer", "B", "infer", Net("lstm", 10000, 128, 512), 64, 100, 1.0, 15, 5),
    Case("C-lstm-step", "C", "step", Net("lstm", 0, 32, 32), 1, 1, 5.0, 21, 7, inner=2000),
    Case("D-lstm-train", "D", "train", Net("lstm", 100, 100, 256, layers=2, per_step=True),
         64, 100, 1.15, 11, 5),
    # translation (seq2seq_bench.py): real Ding pairs, subword vocabularies of 4000 per side
    Case("E-seq2seq-train", "E", "train", Net("lstm", 4000, 256, 256, per_step=True), 64, 20, 1.3, 11, 5),
    Case("E-seq2seq-beam", "E", "beam", Net("lstm", 4000, 256, 256, per_step=True), 1, 20, 2.0, 7, 3),
]


def tiny(case):
    """The same case on miniature shapes, for the smoke test."""
    net = case.net
    small = replace(net, vocab=min(net.vocab, 50) if net.vocab else 0, embed=4, units=8)
    return replace(case, net=small, batch=min(case.batch, 3), length=min(case.length, 6),
                   inner=min(case.inner, 5))


def select(only=None):
    """only: None or a list of workload letters or case ids (prefixes allowed)."""
    if not only:
        return list(CASES)
    keep = [c for c in CASES if any(c.workload == o or c.id.startswith(o) for o in only)]
    if not keep:
        raise SystemExit(f"--only {','.join(only)} matches no case; cases: {[c.id for c in CASES]}")
    return keep
