#!/bin/sh
# The seeds' "imitate code" case: a character-level LSTM on Python's standard-library source.
set -e
lstmkit generate train --corpus stdlib --max-chars 200000 --seq-len 64 --epochs 12 --patience 2 --units 128 \
    --length 400 --samples 2 --temperature 0.6 --out runs/code
