"""Captioning models: teacher-forcing layouts, vocabularies, the step decoder
against the training graph, learning a small generated set, and the scores."""
import numpy as np
import pytest

import lstmkit as lk
from lstmkit.apps import caption_eval as E
from lstmkit.apps import caption_model as M


def test_teacher_forcing_layouts():
    seqs = [[5, 6, 7], [8]]
    w, t = M.teacher_forcing("show-tell", seqs, max_len=10)
    assert w.tolist() == [[M.BOS, 5, 6, 7], [M.BOS, 8, 0, 0]]
    # the image step comes first and "predicts" BOS; then each word predicts the next
    assert t.tolist() == [[M.BOS, 5, 6, 7, M.EOS], [M.BOS, 8, M.EOS, 0, 0]]
    w, t = M.teacher_forcing("init", seqs, max_len=2)                 # cut to 2 tokens
    assert w.tolist() == [[M.BOS, 5, 6], [M.BOS, 8, 0]]
    assert t.tolist() == [[5, 6, M.EOS], [8, M.EOS, 0]]


def test_vocab_words_and_characters():
    v = M.CaptionVocab("word").fit(["A red square.", "A blue disc.", "A red disc."], min_count=2)
    assert v.vocab[:4] == M.SPECIALS and set(v.vocab[4:]) == {"a", ".", "red", "disc"}
    ids = v.encode("A green disc.")
    assert ids[1] == M.UNK
    assert v.decode(v.encode("A red disc.")) == "a red disc."
    assert v.decode([M.BOS] + v.encode("a red disc") + [M.EOS, 0]) == "a red disc"
    z = M.CaptionVocab("char").fit(["奶瓶", "青蛙。"])
    assert z.decode(z.encode("青瓶。")) == "青瓶。"
    assert M.CaptionVocab.from_dict(z.to_dict()).vocab == z.vocab


@pytest.mark.parametrize("arch", M.ARCHS)
def test_step_decoder_matches_the_training_graph(arch):
    """The decoder's step-by-step log-probabilities are the graph's teacher-forced
    outputs, position by position (same layers, dropout off)."""
    rng = np.random.default_rng(1)
    shape = (6, 5) if arch == "attention" else (7,)
    feats = rng.normal(size=(3,) + shape).astype(np.float32)
    model = M.build_model(arch, shape, 11, embed_dim=8, units=12, dropout=0.2, seed=3)
    words, _ = M.teacher_forcing(arch, [[4, 5, 6], [7, 8, 9], [10, 4, 5]], 10)
    probs = model.predict(M.model_inputs(arch, feats, words))              # (B, T', V)
    dec = M.CaptionDecoder(model)
    enc = dec.encode(feats)
    state = dec.start(enc)
    off = 1 if arch == "show-tell" else 0
    for k in range(words.shape[1]):
        logp, weights, state = dec.step(enc, state, words[:, k])
        want = np.log(probs[:, k + off])
        keep = np.ones(11, bool)
        keep[[M.PAD, M.UNK, M.BOS]] = False
        np.testing.assert_allclose(logp[:, keep], want[:, keep], rtol=2e-4, atol=2e-5)
        assert np.isneginf(logp[:, ~keep]).all()
        if arch == "attention":
            assert weights.shape == (3, 6) and np.allclose(weights.sum(1), 1, atol=1e-5)
        else:
            assert weights is None


@pytest.mark.parametrize("arch", M.ARCHS)
def test_learns_a_small_caption_set(arch):
    """Six image classes, each with its own caption: trained models caption held-in
    images exactly, greedy and with a beam."""
    rng = np.random.default_rng(0)
    captions = ["a red square .", "a red disc .", "a blue square .", "a blue disc .",
                "the letter b .", "two green discs ."]
    centres = rng.normal(size=(6, 4, 8)).astype(np.float32) * 2
    cls = np.repeat(np.arange(6), 8)
    feats = centres[cls] + 0.1 * rng.normal(size=(len(cls), 4, 8)).astype(np.float32)
    if arch != "attention":
        feats = feats.reshape(len(cls), -1)
    vocab = M.CaptionVocab("word").fit(captions)
    words, target = M.teacher_forcing(arch, [vocab.encode(captions[c]) for c in cls], 10)
    model = M.build_model(arch, feats.shape[1:], len(vocab), embed_dim=16, units=32, dropout=0.0, seed=0)
    model.compile(optimizer=lk.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(M.model_inputs(arch, feats, words), target, batch_size=16, epochs=60, verbose=0, seed=0)
    want = [captions[c].replace(" .", ".") for c in cls]
    for beam in (1, 3):
        got = [vocab.decode(s) for s in M.describe_ids(model, feats, beam=beam, max_len=8)]
        assert got == want, (beam, got[:6])


def test_head_nouns_and_object_share():
    assert E.head_noun("A great blue heron.") == "heron"
    assert E.head_noun("A pair of pliers.") == "pair"
    assert E.head_noun("The letter Q.") == "q"
    assert E.head_noun("baby bottle") == "bottle"
    assert E.head_noun("Two ripe apples on a plate.") == "apple"
    assert E.head_noun("...") == ""
    hyps = ["a heron.", "a crow.", "."]
    refs = [["A great blue heron."], ["A raven.", "A big crow."], ["A cat."]]
    assert E.object_share(hyps, refs) == pytest.approx(2 / 3)


def test_bleu_and_baselines():
    refs = [["A red square."], ["A blue disc.", "A round blue disc."], ["A red disc."]]
    perfect = E.bleu([r[0] for r in refs], refs)
    assert perfect["bleu1"] == pytest.approx(100) and perfect["bleu4"] == pytest.approx(100)
    worse = E.bleu(["a dog.", "a dog.", "a dog."], refs)
    assert worse["bleu1"] < 60 and worse["bleu2"] < perfect["bleu2"]
    cap, n = E.most_frequent_caption([["A cat."], ["a  cat."], ["A dog."]])
    assert (cap, n) == ("A cat.", 2)
    train = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    test = np.array([[0.1, 0.9], [3.0, 0.2]], np.float32)
    assert E.nearest_captions(train, [["x."], ["y."]], test) == ["y.", "x."]
    zh = E.bleu(["奶瓶"], [["奶瓶"]], lang="zh")
    assert zh["bleu1"] == pytest.approx(100)
