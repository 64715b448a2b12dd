"""Keras's character-level seq2seq recipe (keras.io/examples/nlp/lstm_seq2seq),
line for line with lk. for keras.layers., on a generated task: reverse a
string of digits. A training model, saved and loaded; then an inference
encoder and decoder built from the loaded model's layers; greedy decoding.

Unlike the recipe, RMSprop gets a larger learning rate (with clipnorm) so that
the test trains in seconds. The layers are unseeded, as in the recipe: over 11
runs 42 to 59 of the 60 held-out strings came back exactly reversed; the test
asks for 30."""
import numpy as np

import lstmkit as lk


def reversal_data(n, seed):
    rng = np.random.default_rng(seed)
    inputs = ["".join(rng.choice(list("0123456789"), rng.integers(3, 6))) for _ in range(n)]
    targets = ["\t" + s[::-1] + "\n" for s in inputs]            # \t starts, \n ends, as in the recipe
    return inputs, targets


def test_keras_seq2seq_recipe(tmp_path):
    input_texts, target_texts = reversal_data(1500, seed=0)
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
    latent_dim = 48

    # ---- the training model, as in the recipe ----
    encoder_inputs = lk.Input(shape=(None, num_encoder_tokens))
    encoder = lk.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = lk.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = lk.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = lk.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = lk.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer=lk.RMSprop(learning_rate=0.005, clipnorm=1.0), loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit([encoder_input_data, decoder_input_data], decoder_target_data,
                        batch_size=32, epochs=14, validation_split=0.2, verbose=0, seed=0)
    assert history.history["val_loss"][-1] < 0.5 * history.history["val_loss"][0]
    model.save(tmp_path / "s2s_model.lstmkit")

    # ---- inference models from the loaded model's layers ----
    model = lk.models.load_model(tmp_path / "s2s_model.lstmkit")
    encoder_inputs = model.input[0]  # input_1
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output  # lstm_1
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = lk.Model(encoder_inputs, encoder_states)
    decoder_inputs = model.input[1]  # input_2
    decoder_state_input_h = lk.Input(shape=(latent_dim,))
    decoder_state_input_c = lk.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h_dec, state_c_dec]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = lk.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)
    reverse_target_char_index = dict((i, char) for char, i in target_token_index.items())

    def decode_sequence(input_seq):
        states_value = encoder_model.predict(input_seq, verbose=0)
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, target_token_index["\t"]] = 1.0
        stop_condition = False
        decoded_sentence = ""
        while not stop_condition:
            output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
            sampled_token_index = np.argmax(output_tokens[0, -1, :])
            sampled_char = reverse_target_char_index[sampled_token_index]
            decoded_sentence += sampled_char
            if sampled_char == "\n" or len(decoded_sentence) > max_decoder_seq_length:
                stop_condition = True
            target_seq = np.zeros((1, 1, num_decoder_tokens))
            target_seq[0, 0, sampled_token_index] = 1.0
            states_value = [h, c]
        return decoded_sentence

    held_out = range(1200, 1260)                                   # from the validation split
    right = sum(decode_sequence(encoder_input_data[i:i + 1]) == target_texts[i][1:] for i in held_out)
    print(f"exact reversals: {right} of {len(held_out)}")
    assert right >= 0.5 * len(held_out)
    # the inference models share the training model's weights
    assert encoder_model.layers[1] is model.layers[2] and decoder_model.get_layer(model.layers[3].name) is model.layers[3]
