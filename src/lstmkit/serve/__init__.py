"""`lstmkit serve`: a local web page that shows the networks at work.

Pages: Gates (the gates, cell state and hidden state of a trained model over
a text, as heat maps, with LSTMVis's pattern search), Generate (text and Tang
poems streamed token by token, acrostics too), Translate (the beam's
hypotheses and the attention matrix), Gradients (the vanishing-gradient
experiment with its dc_t/dc_{t-1} histogram) and Models (the run folders).

The library never imports this package; it imports the library. It needs
Starlette and uvicorn: pip install 'lstmkit[serve]'.
"""
from .params import Limits


def create_app(*args, **kwargs):
    """See lstmkit.serve.app.create_app."""
    from .app import create_app as make
    return make(*args, **kwargs)


__all__ = ["Limits", "create_app"]
