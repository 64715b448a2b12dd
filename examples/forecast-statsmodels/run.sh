#!/bin/sh
# Forecasting real series shipped with statsmodels (no download), against ETS, SARIMA and naive forecasts.
set -e
# yearly sunspots, one year ahead, with a 90 % interval (the default)
# (window 22, mode level, 32 units: what the benchmark's leak-free validation chose for sunspots)
lstmkit forecast train --dataset sunspots --window 22 --mode level --epochs 200 --patience 20 \
    --refit --out runs/sunspots
# weekly CO2 a quarter ahead, the one-step model rolled forward 13 times; the window mean as the level,
# an ensemble of 3 networks, the interval calibrated on the validation windows (conformal, the default)
lstmkit forecast train --dataset co2 --window 26 --mode mean --deseason --units 64 --dropout 0.2 --horizon 13 \
    --strategy recursive --ensemble 3 --epochs 200 --patience 20 --out runs/co2
# monthly EU electrical equipment index: seasonal differences, half a year ahead
lstmkit forecast train --dataset elec_equip --window 12 --mode seasonal --horizon 6 --strategy recursive \
    --epochs 200 --patience 20 --refit --out runs/elec_equip
# the same with a linear autoregressive skip over the last 13 months beside the LSTM (trained with it)
lstmkit forecast train --dataset elec_equip --window 24 --mode seasonal --skip 13 --horizon 6 --strategy recursive \
    --epochs 200 --patience 20 --refit --out runs/elec_equip-skip
# the next 12 months after the end of the series, with dates and the interval
lstmkit forecast predict --model runs/elec_equip --dataset elec_equip --horizon 12 --out runs/elec_equip-next
# the table of examples/forecast-statsmodels/README.md (all five series, LSTM and GRU: about 20 minutes on a quiet
# 2-core machine; validation folds scored with statistics from before each block)
python examples/forecast-statsmodels/benchmark.py --out runs/forecast-benchmark
# the hybrid (ETS or SARIMA + an LSTM on its one-step errors), validated as it forecasts the test period;
# one forecaster per series picked on validation (results.md)
python examples/forecast-statsmodels/benchmark.py --cells hybrid \
    --reuse-stage1 runs/forecast-benchmark/results.json --out runs/forecast-hybrid
python examples/forecast-statsmodels/benchmark.py --combine runs/forecast-benchmark runs/forecast-hybrid \
    --out runs/forecast-all
