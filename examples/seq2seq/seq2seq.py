"""Keras's character-level sequence-to-sequence recipe, with lstmkit.

    .venv/bin/python examples/seq2seq/seq2seq.py [--pairs 4000] [--epochs 40] [--attention]

The lines that build, train and run the models are those of Keras's example
"Character-level recurrent sequence-to-sequence model" (keras.io, lstm_seq2seq),
with `lk.` for `keras.layers.`/`keras.`: an LSTM encoder whose final state
starts an LSTM decoder (teacher forcing), a softmax over characters; then,
from the trained model's layers, an inference encoder and a step-by-step
decoder. With --attention the decoder also attends over the encoder's
steps (lk.Attention, Luong) and the script draws one sentence's attention.

Data: German -> English sentence pairs from the Ding dictionary (Debian
trans-de-en, through the data cache: `lstmkit data fetch trans-de-en`),
the shortest ones. Reported on held-out pairs: character error rate (edit
distance / reference length) and exact matches, beside a retrieval
baseline (the English of the training pair whose German shares the most
character trigrams). Everything goes to --out: history.png, results.json,
samples.txt (and attention.png).
"""
import argparse
import json
import os
import re
import sys
import time

import numpy as np

import lstmkit as lk
from lstmkit import datasets, plotting

SENTENCE = re.compile(r"^[A-ZÄÖÜ].*[.?!]$")


def ding_pairs(max_chars):
    """Unique (German, English) sentence pairs from the Ding dictionary, both sides at
    most max_chars characters, in file order."""
    root = datasets.fetch("trans-de-en")
    path = root / datasets.SOURCES["trans-de-en"].files["de-en"]
    seen, pairs = set(), []
    tag = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\])")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            de, en = line.rstrip("\n").split(" :: ", 1)
            for d, e in zip(de.split(" | "), en.split(" | ")):
                d, e = tag.sub("", d.split("; ")[0]).strip(), tag.sub("", e.split("; ")[0]).strip()
                if (SENTENCE.match(d) and SENTENCE.match(e) and len(d.split()) >= 3 and len(e.split()) >= 3
                        and len(d) <= max_chars and len(e) <= max_chars and (d, e) not in seen):
                    seen.add((d, e))
                    pairs.append((d, e))
    return pairs


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def scores(predicted, reference):
    cer = sum(edit_distance(p, r) for p, r in zip(predicted, reference)) / sum(len(r) for r in reference)
    exact = float(np.mean([p == r for p, r in zip(predicted, reference)]))
    return {"char_error_rate": cer, "exact": exact}


def retrieval_baseline(train_pairs, queries):
    """For each German query, the English side of the training pair with the most shared trigrams (Jaccard)."""
    grams = lambda s: {s[i:i + 3] for i in range(len(s) - 2)}
    index = [(grams(d), e) for d, e in train_pairs]
    out = []
    for q in queries:
        g = grams(q)
        out.append(max(index, key=lambda t: len(g & t[0]) / (len(g | t[0]) or 1))[1])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Keras's seq2seq recipe on German-English pairs")
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--max-chars", type=int, default=40)
    ap.add_argument("--latent", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--attention", action="store_true", help="the decoder attends over the encoder steps")
    ap.add_argument("--eval", type=int, default=300, help="held-out pairs decoded and scored")
    ap.add_argument("--out", default="runs/seq2seq")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)

    pairs = ding_pairs(args.max_chars)
    order = rng.permutation(len(pairs))[:args.pairs]
    pairs = [pairs[i] for i in order]
    n_train = int(len(pairs) * 0.9)
    print(f"{len(pairs)} German-English pairs of at most {args.max_chars} characters "
          f"({n_train} for training and validation, {len(pairs) - n_train} held out)")

    # ---- the recipe's data layout: one-hot characters, \t starts and \n ends a target ----
    input_texts = [d for d, _ in pairs]
    target_texts = ["\t" + e + "\n" for _, e in pairs]
    input_characters = sorted(set("".join(input_texts)))
    target_characters = sorted(set("".join(target_texts)))
    num_encoder_tokens = len(input_characters)
    num_decoder_tokens = len(target_characters)
    max_encoder_seq_length = max(len(t) for t in input_texts)
    max_decoder_seq_length = max(len(t) for t in target_texts)
    input_token_index = dict([(char, i) for i, char in enumerate(input_characters)])
    target_token_index = dict([(char, i) for i, char in enumerate(target_characters)])
    encoder_input_data = np.zeros((len(input_texts), max_encoder_seq_length, num_encoder_tokens), dtype="float32")
    decoder_input_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
    decoder_target_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
    for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
        for t, char in enumerate(input_text):
            encoder_input_data[i, t, input_token_index[char]] = 1.0
        for t, char in enumerate(target_text):
            decoder_input_data[i, t, target_token_index[char]] = 1.0
            if t > 0:
                decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
    latent_dim = args.latent

    # ---- the training model ----
    encoder_inputs = lk.Input(shape=(None, num_encoder_tokens))
    encoder = lk.LSTM(latent_dim, return_state=True, return_sequences=args.attention)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = lk.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = lk.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    if args.attention:
        attention = lk.Attention()
        context = attention([decoder_outputs, encoder_outputs])
        decoder_outputs = lk.Concatenate()([decoder_outputs, context])
    decoder_dense = lk.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = lk.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.summary()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    t0 = time.time()
    history = model.fit([encoder_input_data[:n_train], decoder_input_data[:n_train]], decoder_target_data[:n_train],
                        batch_size=args.batch, epochs=args.epochs, validation_split=0.2, seed=0)
    train_seconds = time.time() - t0
    plotting.history(history.history, os.path.join(args.out, "history.png"),
                     "seq2seq " + ("with attention" if args.attention else "(Keras recipe)"))
    model.save(os.path.join(args.out, "s2s_model.lstmkit"))

    # ---- inference: the recipe's encoder and decoder models, from the saved model's layers ----
    model = lk.models.load_model(os.path.join(args.out, "s2s_model.lstmkit"))
    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
    encoder_states = [state_h_enc, state_c_enc]
    decoder_inputs = model.input[1]
    decoder_state_input_h = lk.Input(shape=(latent_dim,))
    decoder_state_input_c = lk.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    if args.attention:
        # the encoder's steps are an input of the step decoder too
        encoder_model = lk.Model(encoder_inputs, [encoder_outputs] + encoder_states)
        steps_in = lk.Input(shape=(None, latent_dim))
        context, weights = model.layers[4]([decoder_outputs, steps_in], return_attention_scores=True)
        decoder_outputs = model.layers[6](model.layers[5]([decoder_outputs, context]))
        decoder_model = lk.Model([decoder_inputs, steps_in] + decoder_states_inputs,
                                 [decoder_outputs] + decoder_states + [weights])
    else:
        encoder_model = lk.Model(encoder_inputs, encoder_states)
        decoder_dense = model.layers[4]
        decoder_outputs = decoder_dense(decoder_outputs)
        decoder_model = lk.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)
    reverse_target_char_index = dict((i, char) for char, i in target_token_index.items())

    def decode_sequences(input_seqs):
        """The recipe's greedy decoding, for a batch of sentences at once."""
        B = len(input_seqs)
        enc = encoder_model.predict(input_seqs, batch_size=B)
        steps, states_value = (enc[0], enc[1:]) if args.attention else (None, enc)
        target_seq = np.zeros((B, 1, num_decoder_tokens), dtype="float32")
        target_seq[:, 0, target_token_index["\t"]] = 1.0
        decoded, done, maps = [""] * B, np.zeros(B, bool), []
        for _ in range(max_decoder_seq_length):
            if args.attention:
                output_tokens, h, c, w = decoder_model.predict([target_seq, steps] + states_value, batch_size=B)
                maps.append(w[:, 0])
            else:
                output_tokens, h, c = decoder_model.predict([target_seq] + states_value, batch_size=B)
            sampled = output_tokens[:, -1, :].argmax(-1)
            for i, k in enumerate(sampled):
                ch = reverse_target_char_index[int(k)]
                if not done[i]:
                    if ch == "\n":
                        done[i] = True
                    else:
                        decoded[i] += ch
            if done.all():
                break
            target_seq = np.zeros((B, 1, num_decoder_tokens), dtype="float32")
            target_seq[np.arange(B), 0, sampled] = 1.0
            states_value = [h, c]
        return decoded, (np.stack(maps, 1) if maps else None)

    held = list(range(n_train, min(len(pairs), n_train + args.eval)))
    predicted, maps = decode_sequences(encoder_input_data[held])
    reference = [pairs[i][1] for i in held]
    baseline = retrieval_baseline(pairs[:n_train], [pairs[i][0] for i in held])
    ours, base = scores(predicted, reference), scores(baseline, reference)
    result = {"pairs": len(pairs), "train_and_val": n_train, "held_out_scored": len(held),
              "attention": args.attention, "latent": latent_dim, "epochs": len(history.history["loss"]),
              "train_seconds": round(train_seconds, 1), "final": {k: v[-1] for k, v in history.history.items()},
              "seq2seq": ours, "retrieval_baseline": base}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "samples.txt"), "w") as f:
        for i, p, b in zip(held, predicted, baseline):
            f.write(f"{pairs[i][0]}\n  reference: {pairs[i][1]}\n  seq2seq:   {p}\n  retrieval: {b}\n")
    print(f"held-out pairs: {len(held)}; seq2seq character error rate {ours['char_error_rate']:.3f}, "
          f"exact {ours['exact']:.3f}; retrieval baseline {base['char_error_rate']:.3f}, {base['exact']:.3f}")
    for i, p in list(zip(held, predicted))[:8]:
        print(f"  {pairs[i][0]}  ->  {p}   (reference: {pairs[i][1]})")
    if args.attention and maps is not None:
        i = 0
        src, out = pairs[held[i]][0], predicted[i]
        plt = plotting._plt()
        fig, ax = plt.subplots(figsize=(8, 6))
        ax.imshow(maps[i, :len(out) + 1, :len(src)], aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(src)), list(src))
        ax.set_yticks(range(len(out) + 1), list(out) + ["⏎"])
        ax.set_xlabel("German (encoder steps)")
        ax.set_ylabel("English (decoder steps)")
        ax.set_title("attention weights")
        plotting.save(fig, os.path.join(args.out, "attention.png"))
    print(f"wrote {args.out}/: history.png, results.json, samples.txt" + (", attention.png" if args.attention else ""))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
