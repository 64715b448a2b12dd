#!/bin/sh
# Forecasting real series shipped with statsmodels (no download).
set -e
lstmkit forecast train --dataset sunspots --window 22 --out runs/sunspots
lstmkit forecast train --dataset sunspots --window 22 --horizon 3 --out runs/sunspots-h3
lstmkit forecast train --dataset co2 --window 52 --horizon 4 --epochs 15 --out runs/co2
lstmkit forecast predict --model runs/sunspots --dataset sunspots
