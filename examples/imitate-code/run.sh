#!/bin/sh
# The seeds' "imitate code" case: a character-level LSTM on Python's standard-library source,
# then char-rnn's Linux kernel: C files of kernel/, mm/ and fs/ext4/ from Debian's linux-source-6.1
# (through the data cache: `lstmkit data fetch linux-source-6.1`, 139 MB), beside a Kneser-Ney baseline.
set -e
lstmkit generate train --corpus stdlib --max-chars 200000 --seq-len 64 --epochs 12 --patience 2 --units 128 \
    --length 400 --samples 2 --temperature 0.6 --out runs/code
lstmkit --blas-threads 2 generate train --corpus linux --max-chars 3000000 --val-fraction 0.02 --test-fraction 0.02 \
    --layers 2 --units 256 --embed-dim 32 --seq-len 100 --batch-size 32 --lr 0.003 --epochs 20 --patience 2 \
    --max-minutes 25 --curve-every 120 --kn-orders 3,5,7 --samples 3 --length 600 --temperature 0.6 \
    --out runs/linux
