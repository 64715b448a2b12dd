#!/bin/sh
# Exploding gradients in a simple RNN, without and with gradient clipping (a few seconds).
set -e
python "$(dirname "$0")/run.py" runs/gradient-clipping
