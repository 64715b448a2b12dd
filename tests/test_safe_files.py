"""Model files: truncated, tampered, foreign and absurd files are refused in words, before anything is
built; nothing is unpickled."""
import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

import lstmkit as lk
from lstmkit import io
from lstmkit.models import saving


def saved(tmp_path, name="m.lstmkit"):
    model = lk.Sequential([lk.Embedding(20, 4, input_length=5), lk.LSTM(3), lk.Dense(2, activation="softmax")],
                          seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.arange(1, 21).reshape(4, 5) % 19 + 1, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    path = tmp_path / name
    model.save(path)
    return model, path


def header_of(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), n, raw


def test_round_trip_still_works_and_records_a_digest(tmp_path):
    model, path = saved(tmp_path)
    meta = io.read_safetensors_metadata(path)
    assert len(meta["weights_sha256"]) == 64
    again = lk.load_model(path)
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(again.get_weights()[k], v)


@pytest.mark.parametrize("cut", [0, 5, 9, 40, -1, -100])
def test_truncated_files_say_truncated(tmp_path, cut):
    _, path = saved(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut])
    with pytest.raises(ValueError) as e:
        lk.load_model(path)
    msg = str(e.value)
    assert "expected a lstmkit model file" in msg
    assert ("empty file" in msg if cut == 0 else "too short" in msg if 0 < cut < 10 else "truncated" in msg), msg
    assert "\\x" not in msg.split("found")[1]                      # words, not the first bytes


@pytest.mark.parametrize("first", [b"\x80", b"\x08", b"{", b"\x89"])
def test_short_files_say_too_short_whatever_their_first_byte(tmp_path, first):
    """A header length of 128 (+ 256 k) starts with the byte of a pickle's magic: a file cut
    under 10 bytes is still called too short, not a pickle."""
    path = tmp_path / "m.lstmkit"
    path.write_bytes(first + b"\x0c\x00\x00\x00")
    with pytest.raises(ValueError, match="only 5 bytes, too short"):
        lk.load_model(path)


def test_flipped_weight_bytes_are_detected(tmp_path):
    _, path = saved(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x40                                                  # a bit in the last weight
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256 differs.*damaged or tampered"):
        lk.load_model(path)


def test_appended_bytes_are_detected(tmp_path):
    _, path = saved(tmp_path)
    path.write_bytes(path.read_bytes() + b"extra")
    with pytest.raises(ValueError, match="5 bytes after the last weight: something was appended"):
        lk.load_model(path)


def rewrite_config(path, edit):
    """Re-save the file with its model config edited (weights and other metadata kept)."""
    from safetensors.numpy import load_file
    header, _, _ = header_of(path)
    meta = header["__metadata__"]
    cfg = json.loads(meta["model"])
    edit(cfg)
    meta["model"] = json.dumps(cfg)
    save_file(load_file(str(path)), str(path), metadata=meta)


def test_absurd_size_is_refused_before_building(tmp_path, monkeypatch):
    _, path = saved(tmp_path)
    rewrite_config(path, lambda cfg: cfg["config"]["layers"][1]["config"].update(units=10 ** 12))
    built = []
    monkeypatch.setattr(saving, "layer_from_config", lambda c: built.append(c))
    with pytest.raises(ValueError, match=r"layer 'lstm\w*' asks for units=1000000000000, but the file holds "
                                         r"\d+ weight values in all.*refused before building anything"):
        lk.load_model(path)
    assert built == []                                              # nothing was built


def test_unknown_layer_and_malformed_config(tmp_path):
    _, path = saved(tmp_path)
    rewrite_config(path, lambda cfg: cfg["config"]["layers"][1].update(class_name="Transformer"))
    with pytest.raises(ValueError, match="unknown layer class 'Transformer'; known: "):
        lk.load_model(path)
    _, path = saved(tmp_path, "b.lstmkit")
    rewrite_config(path, lambda cfg: cfg["config"]["layers"][1]["config"].update(colour="red"))
    with pytest.raises(ValueError, match="model config in the file is malformed.*colour"):
        lk.load_model(path)


def test_damaged_header_entries(tmp_path):
    _, path = saved(tmp_path)
    header, n, raw = header_of(path)
    key = next(k for k in header if k != "__metadata__")
    header[key]["dtype"] = "F64"                                     # sizes no longer add up
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    with pytest.raises(ValueError, match=f"damaged header: tensor '{key}'.*should take"):
        lk.load_model(path)


def test_no_pickle_anywhere_in_loading(tmp_path, monkeypatch):
    import pickle
    _, path = saved(tmp_path)

    def boom(*a, **k):
        raise AssertionError("pickle used")
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    lk.load_model(path)


def test_weights_alone_from_another_tool(tmp_path):
    p = tmp_path / "w.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(p))
    with pytest.raises(ValueError, match="safetensors file but not a lstmkit model"):
        lk.load_model(p)
