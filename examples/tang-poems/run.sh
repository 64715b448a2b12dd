#!/bin/sh
# Tang poems from a character-level LSTM. The poems come through the data cache
# (`lstmkit data fetch fortunes-zh chinese-poetry`: no root, SHA-256 checked).
set -e
# 1. the 313 poems of fortunes-zh: a minute
lstmkit generate train --corpus tang --seq-len 48 --epochs 25 --dropout 0.3 --lr 0.005 \
    --line-chars 7 --samples 3 --out runs/tang
lstmkit generate sample --model runs/tang --line-chars 5 --prime 月 --samples 3 --out runs/tang-5
# 2. the 57,607 poems of chinese-poetry, beside a Kneser-Ney n-gram baseline, with a time budget
lstmkit --blas-threads 2 generate train --corpus tang-full --min-count 20 --layers 2 --units 256 --embed-dim 64 \
    --seq-len 32 --batch-size 32 --lr 0.004 --epochs 20 --patience 2 --max-minutes 65 --curve-every 180 \
    --samples 4 --form jueju7 --out runs/tang-full
# or in one command under 30 minutes in all (24 min of training, then the baseline and the scoring)
# lstmkit generate train --corpus tang-full --min-count 20 --layers 2 --units 256 --embed-dim 64 \
#     --seq-len 32 --batch-size 32 --lr 0.004 --max-minutes 24 --out runs/tang-30min
# ... and one more pass from where it stopped (a fresh Adam)
lstmkit generate train --corpus tang-full --min-count 20 --init-from runs/tang-full --lr 0.003 --epochs 1 \
    --seed 1 --out runs/tang-full-2
# forms and acrostics (藏头诗); --samples 100 prints the share of poems with the requested form
lstmkit generate sample --model runs/tang-full-2 --form jueju5 --acrostic 春夏秋冬 --samples 100 --out runs/tang-acrostic
lstmkit generate sample --model runs/tang-full-2 --form lushi7 --samples 3 --top-k 50 --out runs/tang-lushi7
lstmkit generate sample --model runs/tang-full-2 --form jueju7 --unconstrained --samples 100 --out runs/tang-free
lstmkit generate sample --model runs/tang-full-2 --form lushi5 --acrostic 明月清風白雲流水 --samples 3 --out runs/tang-lushi5
