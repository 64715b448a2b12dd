#!/bin/sh
# Gate heat maps of the sentiment model (run ../sentiment-tweets/run.sh first).
set -e
lstmkit inspect --model runs/sentiment-2class \
    --text "I love the idea of driverless cars, but I would never trust one in the snow" --out runs/inspect
