#!/bin/sh
# Keras's character-level seq2seq recipe with lstmkit, German -> English on the Ding pairs
# (through the data cache), then the same with Luong attention over the encoder's steps.
set -e
lstmkit data fetch trans-de-en
python "$(dirname "$0")/seq2seq.py" --pairs 3000 --latent 256 --epochs 30 --out runs/seq2seq "$@"
python "$(dirname "$0")/seq2seq.py" --pairs 3000 --latent 256 --epochs 30 --attention --out runs/seq2seq-attention "$@"
