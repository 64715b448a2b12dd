#!/bin/sh
# Issue 11's quality study: lstmkit's translation model and its PyTorch anchor on the Ding German-English
# pairs, 3 seeds each, the same epochs, greedy and beam 5; plus lstmkit without attention on seed 0.
# Writes results.md and results.json here; the run folders go to runs/translate-quality.
set -e
cd "$(dirname "$0")/../.."
lstmkit data fetch trans-de-en
python benchmarks/translate_quality.py --seeds 0,1,2 --epochs 20 --jobs 3 --out examples/translate-quality "$@"
