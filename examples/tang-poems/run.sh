#!/bin/sh
# Tang poems from a character-level LSTM (the poems come through the data cache: `lstmkit data fetch fortunes-zh`).
set -e
lstmkit generate train --corpus tang --seq-len 48 --epochs 25 --dropout 0.3 --lr 0.005 \
    --line-chars 7 --samples 3 --out runs/tang
lstmkit generate sample --model runs/tang --line-chars 5 --prime 月 --samples 3 --out runs/tang-5
