"""A recurrent layer's weights in one packed buffer, shared with its params.

The step kernels (kernels/packed.py) read W_x, W_h, b_x and b_h as one C
array (D + H + 2, G*H). Rather than copying the params into it (a copy goes
stale the moment an optimizer or set_weights updates the params in place), the
layer's params *are* views into the buffer:

    params["W_x"] = array[:D]        params["b_x"] = array[D + H]
    params["W_h"] = array[D:D + H]   params["b_h"] = array[D + H + 1]

Each view is itself C-contiguous, so every other kernel takes them as they
are, and any in-place change of a param (optimizer step, set_weights,
``p[...] = ``, ``p += ``) is what the next step reads, at no cost per step.

Replacing an entry (``layer.params["W_x"] = new``) or rebuilding the layer
leaves an array that is not a view: `is_current` notices (one identity check
per param), and a new buffer is made from the current values, with the params
pointed at it again.
"""
import numpy as np

from ..kernels import workspace
from ..kernels.packed_cells import pack_shape

NAMES = ("W_x", "W_h", "b_x", "b_h")


class PackedWeights:
    """The buffer and the views it handed out (None for an absent bias)."""

    __slots__ = ("array", "params", "views", "D", "H")

    def __init__(self, params, n_gates, units, dtype, owner="layer"):
        H = units
        W_x = params["W_x"]
        D = np.shape(W_x)[0] if np.ndim(W_x) == 2 else 0
        expected = {"W_x": (D, n_gates * H), "W_h": (H, n_gates * H),
                    "b_x": (n_gates * H,), "b_h": (n_gates * H,)}
        for name, value in params.items():
            if name not in expected:
                raise ValueError(f"{owner}: unexpected param {name!r}; a recurrent layer has {NAMES}")
            if np.shape(value) != expected[name] or D < 1:
                raise ValueError(f"{owner}: params[{name!r}] has shape {np.shape(value)}; "
                                 f"it must be {expected[name]}" + (" (input features, gates x units)"
                                                                   if name == "W_x" else ""))
        self.array = workspace.aligned_zeros(pack_shape(D, H, n_gates), dtype)  # (D + H + 2, G*H)
        rows = {"W_x": slice(0, D), "W_h": slice(D, D + H), "b_x": D + H, "b_h": D + H + 1}
        for name in list(params):
            view = self.array[rows[name]]
            view[...] = params[name]
            params[name] = view
        self.params = params
        self.views = tuple(params.get(name) for name in NAMES)
        self.D, self.H = D, H

    def is_current(self, params):
        """True while params is the dict this buffer was made for and each
        entry is still the view handed out (written out, not a loop: the
        stream's step runs this check every call)."""
        wx, wh, bx, bh = self.views
        return (params is self.params and params["W_x"] is wx and params["W_h"] is wh
                and (bx is None or params["b_x"] is bx) and (bh is None or params["b_h"] is bh))
