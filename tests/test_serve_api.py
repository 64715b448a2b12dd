"""`lstmkit serve`'s API through the ASGI test client (and, for concurrency,
under uvicorn on loopback): the heat maps hold what the library computes,
streamed generation is the library's sampler, the beam's hypotheses are the
search's own, and the bounds hold."""
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

with warnings.catch_warnings():                  # starlette asks for httpx2 over httpx; both work
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from lstmkit.analysis.gates import layer_trace  # noqa: E402
from lstmkit.apps.common import load_bundle  # noqa: E402
from lstmkit.apps.sampling import has_form, poem_lines, sample_poem, sample_text  # noqa: E402
from lstmkit.apps.stepper import Stepper  # noqa: E402
from lstmkit.data.tokenizer import Tokenizer  # noqa: E402
from lstmkit.engines import get_engine  # noqa: E402
from lstmkit.serve import Limits, create_app  # noqa: E402
from lstmkit.serve.gates import window_matches  # noqa: E402
from serve_fixtures import ServerThread, make_runs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, make_runs(root)


@pytest.fixture(scope="module")
def client(runs):
    return TestClient(create_app(runs[0]), base_url="http://127.0.0.1")


def maps_of(resp):
    T, H = resp["shape"]
    return {m["name"]: np.frombuffer(base64.b64decode(m["data"]), "<f4").reshape(T, H) for m in resp["maps"]}


def events(text):
    """[(event, data)] of a server-sent-events body."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return out


# ---- runs -------------------------------------------------------------------------------------

def test_runs_are_listed_with_ids_apps_and_pages(client, runs):
    body = client.get("/api/runs").json()
    by_id = {r["id"]: r for r in body["runs"]}
    ids = runs[1]
    assert set(ids.values()) == set(by_id)
    assert by_id[ids["tang"]]["pages"] == ["gates", "generate"]
    assert by_id[ids["translate"]]["pages"] == ["gates", "translate"]
    assert by_id[ids["classify"]]["pages"] == ["gates"]
    assert by_id[ids["gradients"]]["pages"] == [] and not by_id[ids["gradients"]]["has_model"]
    assert by_id[ids["classify"]]["headline"] == {"val_accuracy": 0.75, "majority_baseline": 0.5}
    assert by_id["more/generate-rnn"]["cell"] == "rnn"


def test_run_detail_history_and_its_png(client, runs):
    root, ids = runs
    d = client.get("/api/run", params={"id": ids["translate"]}).json()
    assert d["metrics"]["bleu"] == 12.5 and d["history"]["val_loss"] == [3.1, 2.4]
    assert client.get("/api/run/history.png", params={"id": ids["translate"]}).status_code == 404
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    (root / ids["english"] / "history.png").write_bytes(png)
    time.sleep(1.1)                                   # the list is rescanned at most once a second
    r = client.get("/api/run/history.png", params={"id": ids["english"]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == png


def test_runs_are_named_by_id_never_by_path(client, runs):
    root, ids = runs
    for bad in ("../" + root.name + "/" + ids["english"], str(root / ids["english"]), "/etc", "."):
        r = client.post("/api/gates", json={"run": bad, "text": "the"})
        assert r.status_code == 404 and "no such run" in r.json()["error"]
    r = client.get("/api/run/history.png", params={"id": "../../etc/passwd"})
    assert r.status_code == 404


# ---- gates ------------------------------------------------------------------------------------

def test_lstm_maps_hold_the_layers_own_numbers(client, runs):
    root, ids = runs
    text = "the dog sat on the mat."
    r = client.post("/api/gates", json={"run": ids["english"], "text": text, "layer": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokens"] == list(text) and body["cell"] == "lstm" and body["shape"] == [len(text), 16]
    assert [m["name"] for m in body["maps"]] == ["input_gate", "forget_gate", "output_gate", "candidate",
                                                 "cell_state", "hidden"]
    m = maps_of(body)
    i, f, o, g, c, h = (m[k] for k in ("input_gate", "forget_gate", "output_gate", "candidate", "cell_state",
                                       "hidden"))
    # the LSTM's own equations tie the six maps together
    c_prev = np.vstack([np.zeros((1, 16)), c[:-1]])
    np.testing.assert_allclose(c, f * c_prev + i * g, atol=1e-5)
    np.testing.assert_allclose(h, o * np.tanh(c), atol=1e-5)
    # and h_t is what the model's own layer (fast engine) outputs
    model, meta = load_bundle(root / ids["english"])
    tok = Tokenizer.from_dict(meta["tokenizer"])
    x = model.layers[0].forward(np.array([tok.encode(text)]))
    hs = model.layers[1].forward(x)
    np.testing.assert_allclose(h, hs[0], atol=1e-5)


def test_gru_halves_of_a_bidirectional_classifier(client, runs):
    root, ids = runs
    text = "a good film but a dull plot"
    layers = client.get("/api/layers", params={"run": ids["classify"]}).json()
    assert len(layers["layers"]) == 2 and "backward" in layers["layers"][1] and layers["joiner"] == " "
    model, _ = load_bundle(root / ids["classify"])
    bi = model.layers[1]
    for k, half in enumerate((bi.forward_layer, bi.backward_layer)):
        body = client.post("/api/gates", json={"run": ids["classify"], "text": text, "layer": k}).json()
        assert [m["name"] for m in body["maps"]] == ["reset_gate", "update_gate", "candidate", "hidden"]
        assert body["tokens"] == text.split()
        assert body["oov"] == [w not in ("a", "good", "film", "dull", "plot") for w in text.split()]
        x = model.layers[0].forward(np.array([[t if t < 100 else 1 for t in
                                               [Tokenizer.from_dict(client.app.state.registry.load(
                                                   ids["classify"]).meta["tokenizer"]).index.get(w, 1)
                                                for w in text.split()]]]))
        p = half.params
        hs, _, _ = get_engine("gru", "fast").forward(np.ascontiguousarray(x), p["W_x"], p["W_h"], p.get("b_x"),
                                                     p.get("b_h"), reverse=half.go_backwards, **half.cell_options())
        np.testing.assert_allclose(maps_of(body)["hidden"], hs[0], atol=1e-5)


def test_second_layer_of_a_stack_reads_the_first(client, runs):
    root, ids = runs
    text = "when the sun rose"
    body = client.post("/api/gates", json={"run": ids["rnn"], "text": text, "layer": 1}).json()
    assert [m["name"] for m in body["maps"]] == ["hidden"] and body["cell"] == "simple_rnn"
    model, meta = load_bundle(root / ids["rnn"])
    x = np.array([Tokenizer.from_dict(meta["tokenizer"]).encode(text)])
    for layer in model.layers[:3]:                   # embedding, rnn, rnn
        x = layer.forward(x)
    np.testing.assert_allclose(maps_of(body)["hidden"], x[0], atol=1e-5)


def test_translate_gates_read_the_encoder(client, runs):
    root, ids = runs
    text = "Du suchst den Hund heute."
    body = client.post("/api/gates", json={"run": ids["translate"], "text": text, "layer": 0}).json()
    assert body["tokens"] == ["Du", "suchst", "den", "Hund", "heute", "."]
    loaded = client.app.state.registry.load(ids["translate"])
    enc = loaded.model.encode(np.array([loaded.src.encode(text)]))
    np.testing.assert_allclose(maps_of(body)["hidden"], enc.memory[0, :, :6], atol=1e-5)   # forward half
    back = client.post("/api/gates", json={"run": ids["translate"], "text": text, "layer": 1}).json()
    np.testing.assert_allclose(maps_of(back)["hidden"], enc.memory[0, :, 6:], atol=1e-5)


def test_gates_of_500_characters(client, runs):
    text = ("the quick brown fox jumps over the lazy dog. " * 12)[:500]
    body = client.post("/api/gates", json={"run": runs[1]["english"], "text": text}).json()
    assert body["shape"] == [500, 16] and len(body["maps"]) == 6
    assert all(np.isfinite(v).all() for v in maps_of(body).values())


@pytest.mark.parametrize("body, status, words", [
    ({"text": "x" * 2001}, 413, "2,001 characters; at most 2,000"),
    ({"text": ""}, 400, "no tokens"),
    ({"text": 5}, 400, "expected a text"),
    ({"text": "abc", "layer": 3}, 400, "layer: expected an integer from 0 to 0"),
    ({"text": "abc", "layer": "x"}, 400, "layer: expected an integer"),
])
def test_gates_refuses_bad_requests_in_one_line(client, runs, body, status, words):
    r = client.post("/api/gates", json={"run": runs[1]["english"], **body})
    assert r.status_code == status and words in r.json()["error"], r.text


def test_cells_sent_are_bounded(runs):
    app = create_app(runs[0], Limits(gates_cells=1000))
    c = TestClient(app, base_url="http://127.0.0.1")
    r = c.post("/api/gates", json={"run": runs[1]["english"], "text": "a" * 11})   # 11 x 16 x 6 = 1056
    assert r.status_code == 413 and "1,056 numbers" in r.json()["error"]
    assert c.post("/api/gates", json={"run": runs[1]["english"], "text": "a" * 10}).status_code == 200


def test_bodies_hosts_and_content_types(client, runs):
    big = json.dumps({"run": runs[1]["english"], "text": "a" * 70000})
    r = client.post("/api/gates", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than 65,536 bytes" in r.json()["error"]
    r = client.post("/api/gates", content=b"run=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post("/api/gates", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    assert client.get("/api/info", headers={"host": "attacker.example"}).status_code == 400
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/js/main.js").headers["content-type"].startswith("text/javascript")


def test_the_page_fetches_nothing_from_elsewhere():
    static = REPO / "src" / "lstmkit" / "serve" / "static"
    for path in static.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


# ---- pattern search ---------------------------------------------------------------------------

def test_window_matches_counts_units_on_all_through():
    v = np.zeros((8, 4))
    v[2:5, [0, 1]] = 1          # units 0, 1 on at steps 2-4
    v[5:8, [0, 3]] = 1          # units 0, 3 on at steps 5-7
    shared, extra, score = window_matches(v, np.array([0, 1]), 3, 0.5)
    assert shared.tolist() == [0, 0, 2, 1, 1, 1] and extra.tolist() == [0, 0, 0, 0, 0, 1]
    assert score[2] == 1.0 and score[3] == 0.5 and score[5] == pytest.approx(1 / 3)


def test_pattern_search_finds_the_repeats_of_a_phrase(client, runs):
    text = "a cat sat on the mat. a cat sat on the mat. a cat sat on the mat."
    rid = runs[1]["english"]
    h = maps_of(client.post("/api/gates", json={"run": rid, "text": text}).json())["hidden"]
    start, end = 24, 28                          # "cat s" of the second sentence
    threshold = float(np.sort(h[start:end + 1].min(axis=0))[-3]) - 1e-4   # three units stay above it
    r = client.post("/api/gates/search", json={"run": rid, "text": text, "start": start, "end": end,
                                                "threshold": threshold, "top": 5})
    body = r.json()
    assert r.status_code == 200 and len(body["units"]) >= 3
    assert body["units"] == np.flatnonzero((h[start:end + 1] >= threshold).all(axis=0)).tolist()
    units = set(body["units"])
    scores = [m["score"] for m in body["matches"]]
    assert scores == sorted(scores, reverse=True)
    ours = [m for m in body["matches"] if m["source"] == "your text"]
    for m in ours:                                   # each score, counted again from the heat map
        on = set(np.flatnonzero((h[m["start"]:m["start"] + 5] >= threshold).all(axis=0)).tolist())
        assert (m["shared"], m["extra"]) == (len(on & units), len(on - units))
        assert m["score"] == pytest.approx(len(on & units) / len(on | units))
        assert "".join(m["match"]) == text[m["start"]:m["start"] + 5]
    assert 46 in [m["start"] for m in ours if m["score"] == 1.0]           # the third "cat s"
    assert all(m["start"] != start for m in ours)                         # not the selection itself
    assert "the run's samples" in body["corpus"]["sources"]
    r = client.post("/api/gates/search", json={"run": rid, "text": text, "start": 3, "end": 99})
    assert r.status_code == 400 and "start <= end" in r.json()["error"]


def test_search_reads_the_operators_texts(runs):
    app = create_app(runs[0], search_texts=[("notes.txt", "the lazy dog\n\nthe quick fox")])
    c = TestClient(app, base_url="http://127.0.0.1")
    body = c.post("/api/gates/search", json={"run": runs[1]["english"], "text": "the lazy dog", "start": 0,
                                              "end": 2, "threshold": -1.0}).json()
    assert "notes.txt" in body["corpus"]["sources"]
    assert any(m["source"] == "notes.txt" for m in body["matches"])


# ---- generate ---------------------------------------------------------------------------------

def test_streamed_text_is_the_library_sampler(client, runs):
    root, ids = runs
    q = {"run": ids["english"], "prime": "the ", "length": 60, "temperature": 0.7, "top_k": 5, "seed": 3}
    with client.stream("GET", "/api/generate", params=q) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ev = events("".join(r.iter_text()))
    assert ev[0][0] == "start" and ev[0][1]["prime"] == "the " and ev[-1][0] == "done"
    tokens = [d["text"] for e, d in ev if e == "token"]
    assert len(tokens) == 60 and ev[-1][1]["tokens"] == 60
    model, meta = load_bundle(root / ids["english"])
    tok = Tokenizer.from_dict(meta["tokenizer"])
    expected = sample_text(Stepper(model), tok, np.random.default_rng(3), "the ", 60, 0.7, 5)
    assert "the " + "".join(tokens) == expected


def test_streamed_acrostic_is_the_library_poem(client, runs):
    root, ids = runs
    q = {"run": ids["tang"], "mode": "acrostic", "heads": "春夏秋冬", "seed": 7, "temperature": 0.9}
    with client.stream("GET", "/api/generate", params=q) as r:
        ev = events("".join(r.iter_text()))
    poem = "".join(d["text"] for e, d in ev if e == "token")
    lines = poem_lines(poem)
    assert [l[0] for l in lines] == list("春夏秋冬") and has_form(poem, 5, 4)
    model, meta = load_bundle(root / ids["tang"])
    tok = Tokenizer.from_dict(meta["tokenizer"])
    assert poem == sample_poem(Stepper(model), tok, np.random.default_rng(7), 5, 4, "", 0.9, None, "春夏秋冬")
    q = {"run": ids["tang"], "mode": "poem", "form": "jueju7", "seed": 1}
    with client.stream("GET", "/api/generate", params=q) as r:
        poem = "".join(d["text"] for e, d in events("".join(r.iter_text())) if e == "token")
    assert has_form(poem, 7, 4)


@pytest.mark.parametrize("run, q, words", [
    ("english", {"mode": "poem"}, "not on poems"),
    ("tang", {"mode": "acrostic", "heads": "春夏秋"}, "has 3 characters"),
    ("tang", {"mode": "acrostic", "heads": "ABCD"}, "not in the model's vocabulary"),
    ("english", {"temperature": "0"}, "temperature: expected a number from 0.05 to 5.0"),
    ("english", {"length": "5000"}, "length: expected an integer from 1 to 2000"),
    ("english", {"top_k": "0"}, "top_k: expected an integer from 1"),
    ("english", {"prime": "x" * 501}, "at most 500"),
    ("translate", {}, "this page opens models of generate"),
])
def test_generate_refuses_bad_settings_before_streaming(client, runs, run, q, words):
    r = client.get("/api/generate", params={"run": runs[1][run], **q})
    assert r.status_code in (400, 413) and words in r.json()["error"], r.text


# ---- translate --------------------------------------------------------------------------------

def test_beam_hypotheses_best_first_with_attention(client, runs):
    from lstmkit.apps.translate import translate_lines
    root, ids = runs
    text = "Du suchst den Hund heute."
    body = client.post("/api/translate", json={"run": ids["translate"], "text": text, "beam": 4}).json()
    hyps = body["hypotheses"]
    assert len(hyps) == 4 and body["source"] == ["Du", "suchst", "den", "Hund", "heute", "."]
    scores = [h["score"] for h in hyps]
    assert scores == sorted(scores, reverse=True)
    assert hyps[0]["text"] == translate_lines(str(root / ids["translate"]), [text], beam=4)[0]
    for h in hyps:
        a = np.array(h["attention"])
        assert a.shape == (len(h["pieces"]), 6)
        np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-4)
    greedy = client.post("/api/translate", json={"run": ids["translate"], "text": text, "beam": 1}).json()
    assert len(greedy["hypotheses"]) == 1
    assert greedy["hypotheses"][0]["text"] == translate_lines(str(root / ids["translate"]), [text], beam=1)[0]


@pytest.mark.parametrize("body, status, words", [
    ({"text": "x" * 301}, 413, "at most 300"),
    ({"text": "   "}, 400, "empty"),
    ({"text": "Hund", "beam": 11}, 400, "beam: expected an integer from 1 to 10"),
])
def test_translate_refuses_bad_requests(client, runs, body, status, words):
    r = client.post("/api/translate", json={"run": runs[1]["translate"], **body})
    assert r.status_code == status and words in r.json()["error"], r.text


# ---- gradients --------------------------------------------------------------------------------

def test_gradient_norms_and_the_cell_state_histogram(client):
    r = client.post("/api/gradients", json={"steps": 60, "units": 16, "batch": 4}).json()
    assert set(r["norms"]) == {"simple_rnn", "gru", "lstm", "lstm_c"}
    assert all(len(v) == 61 for v in r["norms"].values())
    rnn = np.array(r["norms"]["simple_rnn"])
    assert rnn[60] < 1e-3 * rnn[1]                           # vanishes with the distance
    assert r["norms"]["lstm_c"][60] > rnn[60]                # the cell state carries more
    j = r["jacobian"]
    assert sum(j["counts"]) == j["n"] == 4 * 59 * 16 and len(j["edges"]) == len(j["counts"]) + 1
    small = client.post("/api/gradients", json={"cells": ["simple_rnn"], "steps": 60, "units": 16, "batch": 4,
                                                "weight_scale": 0.5}).json()
    assert set(small["norms"]) == {"simple_rnn"} and "jacobian" not in small
    assert small["norms"]["simple_rnn"][60] < rnn[60]      # smaller recurrent weights, faster decay
    bad = client.post("/api/gradients", json={"cells": ["lstm", "tcn"]})
    assert bad.status_code == 400 and "cells:" in bad.json()["error"]
    assert client.post("/api/gradients", json={"steps": 5000}).status_code == 400


# ---- a slow request does not hold up the others -----------------------------------------------

def _post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_slow_request_does_not_block_others(runs):
    server = ServerThread(create_app(runs[0]))
    try:
        _post(server.url + "/api/gates", {"run": runs[1]["english"], "text": "warm up"})
        slow = {}

        def experiment():
            t0 = time.perf_counter()
            _post(server.url + "/api/gradients", {"steps": 600, "units": 96, "batch": 8})
            slow["seconds"] = time.perf_counter() - t0
            slow["done"] = time.perf_counter()

        t = threading.Thread(target=experiment)
        t.start()
        time.sleep(0.3)                                   # the experiment is running now
        fast, t0 = [], time.perf_counter()
        for _ in range(5):
            _post(server.url + "/api/gates", {"run": runs[1]["english"], "text": "the dog sat on the mat"})
            fast.append(time.perf_counter())
        t.join()
        # the five quick answers all came while the experiment ran, and took a small part of its time
        assert max(fast) < slow["done"] and max(fast) - t0 < slow["seconds"] / 2, (slow, t0, fast)
    finally:
        server.stop()


@pytest.mark.slow
def test_cli_prints_the_url_and_warns_off_loopback(runs):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    p = subprocess.Popen([sys.executable, "-m", "lstmkit", "serve", "--runs", str(runs[0]), "--host", "0.0.0.0",
                          "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert line.startswith("lstmkit serve: http://0.0.0.0:"), line
        port = int(line.split(":")[3].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=30) as r:
            assert len(json.loads(r.read())["runs"]) == 6
    finally:
        p.terminate()
        _, err = p.communicate(timeout=30)
    assert "warning: listening on 0.0.0.0, not on loopback" in err
    r = subprocess.run([sys.executable, "-m", "lstmkit", "serve", "--port", "70000"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "--port" in r.stderr
