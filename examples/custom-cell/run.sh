#!/bin/sh
# Write a cell, check it, train it: a peephole LSTM in NumPy (peephole.py) as a
# character-level model of Python's standard-library source, trained statefully.
set -e
python "$(dirname "$0")/train.py" --out runs/custom-cell "$@"
