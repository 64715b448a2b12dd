"""Property-based tests (hypothesis): the model-file loader, the config parser, the tokenizers and the
CSV and text readers, fed arbitrary and mutated input, fail only with their documented error types
(ValueError, of which DataError is one, TypeError for the config parser, OSError for missing files)."""
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import lstmkit as lk
from lstmkit.data import tables, tang, textfile
from lstmkit.data.errors import DataError
from lstmkit.data.tokenizer import CharTokenizer, Tokenizer, WordLMTokenizer, WordTokenizer
from lstmkit.layers.base import layer_from_config

FUZZ = settings(max_examples=int(os.environ.get("LSTMKIT_FUZZ_EXAMPLES", 150)), deadline=None,
                derandomize=not os.environ.get("LSTMKIT_FUZZ_EXAMPLES"),   # CI: the same examples each run
                suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    m = lk.Sequential([lk.Embedding(12, 3, input_length=4, name="emb"), lk.GRU(2, name="gru"),
                       lk.Dense(2, activation="softmax", name="out")], seed=0)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path_factory.mktemp("fuzz") / "m.lstmkit"
    m.save(path)
    return path.read_bytes()


def load_bytes(tmp_path, data):
    p = tmp_path / "f.lstmkit"
    p.write_bytes(data)
    try:
        lk.load_model(p)
    except ValueError as e:
        assert str(e), "an error without a message"


@FUZZ
@given(data=st.binary(max_size=300))
def test_loader_on_arbitrary_bytes(tmp_path, data):
    load_bytes(tmp_path, data)


@FUZZ
@given(cut=st.integers(0, 10 ** 6), flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)),
                                                   max_size=4))
def test_loader_on_truncated_and_flipped_model_files(tmp_path, model_file, cut, flips):
    data = bytearray(model_file[: cut % (len(model_file) + 1)])
    for at, mask in flips:
        if data:
            data[at % len(data)] ^= mask
    load_bytes(tmp_path, bytes(data))


def header_parts(model_file):
    n = struct.unpack("<Q", model_file[:8])[0]
    return json.loads(model_file[8:8 + n]), model_file[8 + n:]


def with_header(header, body):
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + body


@FUZZ
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=4), value=JSON)
def test_loader_on_mutated_configs(tmp_path, model_file, path, value):
    """Replace one value somewhere in the model config (which is JSON inside the JSON header)."""
    header, body = header_parts(model_file)
    cfg = json.loads(header["__metadata__"]["model"])
    node = cfg
    for step in path[:-1]:
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
        kids = [c for c in children if isinstance(c, (dict, list))]
        if not kids:
            break
        node = kids[step % len(kids)]
    if isinstance(node, dict) and node:
        node[sorted(node)[path[-1] % len(node)]] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    header["__metadata__"]["model"] = json.dumps(cfg)
    load_bytes(tmp_path, with_header(header, body))


@FUZZ
@given(key=st.sampled_from(["format", "format_version", "compile", "optimizer_iterations", "weights_sha256",
                            "model"]), value=st.text(max_size=40))
def test_loader_on_mutated_metadata(tmp_path, model_file, key, value):
    header, body = header_parts(model_file)
    header["__metadata__"][key] = value
    load_bytes(tmp_path, with_header(header, body))


@FUZZ
@given(spec=JSON)
def test_config_parser(spec):
    try:
        layer_from_config(spec if isinstance(spec, dict) else {"class_name": "LSTM", "config": spec})
    except (ValueError, TypeError):
        pass


@FUZZ
@given(cls=st.sampled_from(["LSTM", "GRU", "SimpleRNN", "Dense", "Embedding", "Dropout", "Sequential"]),
       config=st.dictionaries(st.sampled_from(["units", "input_dim", "output_dim", "rate", "activation", "name",
                                               "dtype", "input_shape", "layers", "return_sequences", "seed"]),
                              JSON, max_size=4))
def test_config_parser_on_known_layers(cls, config):
    try:
        layer_from_config({"class_name": cls, "config": config})
    except (ValueError, TypeError):
        pass


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=200)


@FUZZ
@given(corpus=st.lists(TEXT, min_size=1, max_size=5), probe=TEXT,
       kind=st.sampled_from([CharTokenizer, WordTokenizer, WordLMTokenizer]), cap=st.none() | st.integers(3, 20))
def test_tokenizers(corpus, probe, kind, cap):
    tok = kind(max_tokens=cap)
    tok.fit(corpus)
    ids = tok.encode(probe)
    assert all(0 <= i < tok.vocab_size for i in ids)
    tok.decode(ids)
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(probe) == ids


@FUZZ
@given(data=st.binary(max_size=400) | TEXT.map(lambda t: t.encode("utf-8")),
       columns=st.lists(st.sampled_from(["text", "label", "x", ""]), min_size=1, max_size=2, unique=True))
def test_csv_reader(tmp_path, data, columns):
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    try:
        cols, lines = tables.read_csv_columns(p, columns)
    except DataError as e:
        assert str(p) in str(e)
        return
    assert set(cols) == set(columns) and all(len(v) == len(lines) for v in cols.values())


@FUZZ
@given(data=st.binary(max_size=400), errors=st.sampled_from(["strict", "replace"]))
def test_text_and_poem_readers(tmp_path, data, errors):
    p = tmp_path / "f.txt"
    p.write_bytes(data)
    try:
        text = textfile.read_text(p, errors=errors)
    except DataError as e:
        assert str(p) in str(e)
        return
    assert isinstance(text, str)
    try:
        tang.load_tang(str(p))
    except DataError:
        pass


@FUZZ
@given(values=st.lists(st.text(max_size=6), max_size=8))
def test_numbers_from_csv_fields(values):
    try:
        out = tables.parse_floats("f.csv", "x", values, list(range(2, 2 + len(values))))
    except DataError as e:
        assert "f.csv, line" in str(e)
        return
    assert all(np.isfinite(v) or np.isinf(v) for v in out)
