"""What the converters share: a recurrent layer as its stacked levels."""
from ..layers.bidirectional import Bidirectional
from ..layers.stack import RNNStack


def recurrent_levels(layer):
    """The levels a recurrent layer (RNNLayer, Bidirectional, RNNStack) runs,
    one per stacked layer: (forward layer, backward layer or None, merge mode
    or None). A Bidirectional must read forwards in its forward_layer and
    backwards in its backward_layer, as every converter's target does."""
    if isinstance(layer, RNNStack):
        return [lvl for sub in layer.layers for lvl in recurrent_levels(sub)]
    if isinstance(layer, Bidirectional):
        f, b = layer.forward_layer, layer.backward_layer
        if f.go_backwards or not b.go_backwards:
            raise ValueError(f"Bidirectional {layer.name!r}: the conversion needs a forward_layer that reads "
                             f"forwards and a backward_layer with go_backwards=True")
        if layer.merge_mode is None:
            raise ValueError(f"Bidirectional {layer.name!r} has merge_mode=None (two outputs); the "
                             f"conversion needs a merge mode")
        return [(f, b, layer.merge_mode)]
    return [(layer, None, None)]
