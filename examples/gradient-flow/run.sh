#!/bin/sh
# The seeds' vanishing-gradient experiment.
set -e
lstmkit gradients --steps 200 --units 64 --out runs/gradients
# without the forget-gate bias of 1, the LSTM's advantage shrinks
lstmkit gradients --steps 200 --units 64 --forget-bias 0 --out runs/gradients-fb0
