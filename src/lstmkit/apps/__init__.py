"""The applications behind the ``lstmkit`` command, usable from Python:
classify, generate, forecast, gradients, inspect, demo. Each writes its
outputs (model, metrics.json, PNG plots, samples) into a run folder."""
