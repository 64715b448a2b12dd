"""lk.Model: a model made from a graph of layer calls (Keras's functional API).

    enc_in = lk.Input(shape=(None, 16))
    _, h, c = lk.LSTM(32, return_state=True)(enc_in)
    dec_in = lk.Input(shape=(None, 16))
    seq = lk.LSTM(32, return_sequences=True)(dec_in, initial_state=[h, c])
    out = lk.Dense(16, activation="softmax")(seq)
    model = lk.Model([enc_in, dec_in], out)

The graph is the nodes recorded when layers were called on symbolic tensors
(layers/symbolic.py). The model keeps those between its inputs and outputs,
in creation order, which is a topological order (a node's inputs exist before
it is made). Running the model:

  forward   every node in order: its layer's forward on the arrays of its
            inputs, the input masks (Keras's rules: compute_mask of the layer
            that made each tensor), constant keyword arguments as recorded.
  backward  the nodes in reverse: each gets the gradients of its outputs
            (the sum over every use of a tensor; zeros for an output of a
            multi-output layer that received none; a node none of whose
            outputs received one is skipped), runs its layer's backward and
            adds the returned input gradients to its inputs'. Gradients for
            tensors passed by keyword come from ``layer.<keyword>_grad``
            (``initial_state_grad`` of the recurrent layers).

Shared layers. A layer keeps what backward needs in attributes (caches, the
last input, dropout masks). A layer called by several nodes would keep only
the last call's, so for such layers the model saves, after each call, the
attributes that call's forward rebound, and puts them back before that
node's backward. Their weight gradients are summed over the calls into fresh
arrays (a layer may reuse its gradient arrays between backward calls: the
Embedding's gradient table is one such).

Inference shortcuts, as in Sequential: an Embedding whose output feeds only
one recurrent layer is folded into it (RNNLayer.forward_from_embedding);
an output made by a sigmoid/softmax Dense that nothing else reads can hand
its logits to a fusing cross-entropy.
"""
import copy

import numpy as np

from .. import losses, metrics as metrics_mod, optimizers
from ..layers.base import Layer, layer_from_config, register, serialize_layer
from ..layers.container import Container
from ..layers.embedding import Embedding, as_token_ids
from ..layers.recurrent import RNNLayer
from ..layers.symbolic import InputLayer, SymbolicTensor, flatten, map_structure
from . import training
from .checks import as_array
from .training import Head

_MISSING = object()


def _all_layers(layer):
    out = [layer]
    for _, sub in (layer.sublayers() if hasattr(layer, "sublayers") else []):
        out += _all_layers(sub)
    return out


def _as_tensor_list(value, what):
    if isinstance(value, dict):
        value = list(value.values())
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for t in items:
        if not isinstance(t, SymbolicTensor):
            raise TypeError(f"Model {what} must be symbolic tensors (from lk.Input or a layer call); "
                            f"got {type(t).__name__}")
    if not items:
        raise ValueError(f"Model needs at least one tensor in {what}; got none")
    return items


def _fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


@register
class Model(training.ModelMethods, Container):
    """A functional model: lk.Model(inputs, outputs) (Keras's keras.Model)."""

    supports_masking = True
    multi_io = True

    def __init__(self, inputs=None, outputs=None, name=None, seed=None, **kwargs):
        super().__init__(name=name, seed=seed, **kwargs)
        if inputs is None or outputs is None:
            raise ValueError("Model needs inputs and outputs: lk.Model(inputs=[...], outputs=[...]) with "
                             "tensors from lk.Input and layer calls")
        self._input_struct = inputs
        self.inputs = _as_tensor_list(inputs, "inputs")
        self.outputs = _as_tensor_list(outputs, "outputs")
        self.multi_output = isinstance(outputs, (list, tuple, dict))       # outputs come as a list
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("the same tensor is given twice in the Model's inputs")
        self._nodes = self._collect_nodes()
        self.layers = self._order_layers()
        names = [l.name for l in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"layer names {dup} are used by different layers in model {self.name!r}; "
                             f"names key the saved weights: give the layers distinct names")
        self.input_names = [self._input_name(t, i) for i, t in enumerate(self.inputs)]
        self.output_names = self._output_names()
        self._analyse()
        self.input_shape = [t.shape[1:] for t in self.inputs]
        self.built = True
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.heads = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._out_masks = None
        self._input_grads = None
        self._run = None

    # ---- the graph ---------------------------------------------------------------------
    def _collect_nodes(self):
        wanted = {id(t) for t in self.inputs}
        found, stack = {}, list(self.outputs)
        while stack:
            t = stack.pop()
            if id(t) in wanted:
                continue
            node = t.node
            if node.id in found:
                continue
            if isinstance(node.layer, InputLayer):
                raise ValueError(f"graph disconnected: the outputs need input {node.layer.name!r} "
                                 f"(shape {t.shape}), which is not among the Model's inputs "
                                 f"{[i.node.layer.name for i in self.inputs]}")
            found[node.id] = node
            stack.extend(node.inputs)
        return sorted(found.values(), key=lambda n: n.id)

    def _order_layers(self):
        layers = [t.node.layer for t in self.inputs if isinstance(t.node.layer, InputLayer)]
        seen = {id(l) for l in layers}
        for node in self._nodes:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        return layers

    @staticmethod
    def _input_name(t, i):
        return t.node.layer.name if isinstance(t.node.layer, InputLayer) else f"input_{i}"

    def _output_names(self):
        base = [t.node.layer.name for t in self.outputs]
        return [b if base.count(b) == 1 else f"{b}_{t.index}" for b, t in zip(base, self.outputs)]

    def _analyse(self):
        """What runs need to know: uses of each tensor, shared layers, fold pairs."""
        uses = {}
        for node in self._nodes:
            for t in node.inputs:
                uses[id(t)] = uses.get(id(t), 0) + 1
        for t in self.outputs:
            uses[id(t)] = uses.get(id(t), 0) + 1
        self._uses = uses
        self._trees = {node.id: _all_layers(node.layer) for node in self._nodes}
        calls = {}
        for node in self._nodes:
            for l in self._trees[node.id]:
                calls[id(l)] = calls.get(id(l), 0) + 1
        self._shared_nodes = {n.id for n in self._nodes if any(calls[id(l)] > 1 for l in self._trees[n.id])}
        self._shared_leaves = {id(l): l for n in self._nodes for l in self._trees[n.id]
                               if calls[id(l)] > 1 and not isinstance(l, Container)}
        self._leaves = {id(l): l for n in self._nodes for l in self._trees[n.id] if not isinstance(l, Container)}
        # an Embedding read by nothing but one recurrent layer's sequence input folds into it at inference
        out_ids = {id(t) for t in self.outputs}
        self._folds = {}
        for node in self._nodes:
            x = node.args
            if (isinstance(node.layer, RNNLayer) and isinstance(x, SymbolicTensor) and x.node.id != node.id
                    and isinstance(x.node.layer, Embedding) and uses.get(id(x)) == 1 and id(x) not in out_ids
                    and x.node.id not in self._shared_nodes and node.id not in self._shared_nodes
                    and x.node in self._nodes and "training" not in node.const_kwargs):
                self._folds[node.id] = x.node
        self._folded = {n.id for n in self._folds.values()}

    def sublayers(self):
        return [(l.name, l) for l in self.layers if not isinstance(l, InputLayer)]

    @property
    def input(self):
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)

    @property
    def output(self):
        return self.outputs if self.multi_output else self.outputs[0]

    def build(self, input_shape):
        self.built = True                       # built when made: every layer was built by its call

    def compute_output_shape(self, input_shape):
        shapes = [tuple(t.shape[1:]) for t in self.outputs]
        return shapes if self.multi_output else shapes[0]

    def compute_mask(self, x, mask):
        return self._out_masks if self.multi_output else (self._out_masks or [None])[0]

    @property
    def head_activations(self):
        """Per output: the activation of the Dense (or TimeDistributed Dense) that made it,
        when its backward can start from the logits, else None."""
        acts = []
        for t in self.outputs:
            layer = t.node.layer
            ok = (not t.node.multi and hasattr(layer, "backward_logits") and self._uses.get(id(t)) == 1)
            acts.append(getattr(layer, "activation", None) if ok else None)
        return acts

    # ---- data ----------------------------------------------------------------------------
    def standardize_inputs(self, x):
        """One array per input, in the order of self.inputs, from a dict (by input name),
        a list, or one array (one input)."""
        n_in = len(self.inputs)
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(self.input_names))
            missing = [k for k in self.input_names if k not in x]
            if unknown or missing:
                raise ValueError(f"model {self.name!r} takes inputs {self.input_names}; the dict given "
                                 f"lacks {missing} and has unknown keys {unknown}")
            xs = [x[k] for k in self.input_names]
        elif isinstance(x, (list, tuple)) and (n_in > 1 or (len(x) == 1 and isinstance(x[0], np.ndarray))):
            if len(x) != n_in:
                raise ValueError(f"model {self.name!r} takes {n_in} inputs {self.input_names}; got a list "
                                 f"of {len(x)}")
            xs = list(x)
        elif n_in == 1:
            xs = [x]
        else:
            raise ValueError(f"model {self.name!r} takes {n_in} inputs {self.input_names}: give a list "
                             f"or a dict of arrays; got one {type(x).__name__}")
        out = []
        for t, name, a in zip(self.inputs, self.input_names, xs):
            a = as_array(a, f"input {name!r}")
            if a.ndim != len(t.shape):
                raise ValueError(f"input {name!r} of model {self.name!r} expects arrays of shape "
                                 f"{_fmt_shape(t.shape)}; got shape {a.shape}")
            for i, (want, got) in enumerate(zip(t.shape[1:], a.shape[1:])):
                if want is not None and want != got:
                    raise ValueError(f"input {name!r} of model {self.name!r} expects arrays of shape "
                                     f"{_fmt_shape(t.shape)}; got shape {a.shape}")
            out.append(a)
        sizes = {len(a) for a in out}
        if len(sizes) > 1:
            raise ValueError(f"the inputs of model {self.name!r} hold different numbers of samples: "
                             + ", ".join(f"{n}={len(a)}" for n, a in zip(self.input_names, out)))
        if 0 in sizes:
            raise ValueError(f"the inputs of model {self.name!r} are empty")
        return out

    def standardize_targets(self, y):
        """One target per output (None for an output without a loss that got no target)."""
        names = self.output_names
        if isinstance(y, dict):
            unknown = sorted(set(y) - set(names))
            if unknown:
                raise ValueError(f"targets given for unknown outputs {unknown}; model {self.name!r} has "
                                 f"outputs {names}")
            ys = [y.get(k) for k in names]
        elif isinstance(y, (list, tuple)) and len(names) > 1:
            if len(y) != len(names):
                raise ValueError(f"model {self.name!r} has {len(names)} outputs {names}; got a list of "
                                 f"{len(y)} targets")
            ys = list(y)
        elif len(names) == 1:
            ys = [y[0] if isinstance(y, (list, tuple)) and len(y) == 1 and isinstance(y[0], np.ndarray) else y]
        else:
            raise ValueError(f"model {self.name!r} has {len(names)} outputs {names}: give a list or a "
                             f"dict of targets; got one {type(y).__name__}")
        out = []
        for h, name, t in zip(self.heads or [None] * len(names), names, ys):
            if t is None:
                if h is not None and h.loss is not None:
                    raise ValueError(f"output {name!r} has a loss but no target was given for it")
                out.append(None)
                continue
            out.append(as_array(t, f"the target of output {name!r}"))
        return out

    # ---- running the graph -----------------------------------------------------------------
    def forward(self, x, training=False, mask=None, return_logits=False):
        """The outputs for inputs x (a dict by input name, a list, or one array):
        one array, or a list for several outputs. return_logits=True gives the
        logits of a single sigmoid/softmax output instead. mask: masks of the
        inputs (when this model is a layer of another)."""
        xs = self.standardize_inputs(x)
        fused = None
        if return_logits:
            if self.multi_output or self.head_activations[0] is None:
                raise ValueError(f"return_logits=True needs one output made by a Dense that nothing "
                                 f"else reads; model {self.name!r} has outputs {self.output_names}")
            fused = [True]
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(self.inputs)
        outs, _ = self.forward_heads(xs, training=training, fused=fused, input_masks=masks)
        return outs if self.multi_output else outs[0]

    def forward_heads(self, xs, training=False, fused=None, input_masks=None):
        """Run the graph on a list of arrays (one per input). Returns (outputs, masks), one
        per output; an output k with fused[k] is given as its final layer's logits."""
        fused = fused or [False] * len(self.outputs)
        values, masks = {}, {}
        for i, (t, a) in enumerate(zip(self.inputs, xs)):
            values[id(t)] = a
            masks[id(t)] = None if input_masks is None else input_masks[i]
        logits_nodes = {self.outputs[k].node.id for k in range(len(self.outputs)) if fused[k]}
        # fused[k] == "rows": the head's logits at the unmasked steps only (Dense.forward_rows)
        rows_nodes = {self.outputs[k].node.id for k in range(len(self.outputs)) if fused[k] == "rows"}
        run = {"states": {}, "changed": {}, "logits": {}, "shapes": {}, "fused": logits_nodes, "nodes": [],
               "rows": set()}
        fold = not training
        for node in self._nodes:
            if fold and node.id in self._folded:
                run["nodes"].append(node)           # runs inside the recurrent layer's forward
                continue
            kwargs = {k: map_structure(lambda t: values[id(t)], v) for k, v in node.tensor_kwargs.items()}
            kwargs.update(node.const_kwargs)
            kwargs["training"] = node.const_kwargs.get("training", training)
            layer = node.layer
            shared = node.id in self._shared_nodes
            if shared:
                before = [dict(vars(l)) for l in self._trees[node.id]]
            if fold and node.id in self._folds:
                args = None
                out, arg_masks = self._forward_folded(node, self._folds[node.id], values, masks, kwargs)
            else:
                args = map_structure(lambda t: values[id(t)], node.args)
                arg_masks = map_structure(lambda t: masks[id(t)], node.args)
                if isinstance(arg_masks, list) and all(m is None for m in flatten(arg_masks)):
                    arg_masks = None
                if (node.id in rows_nodes and isinstance(arg_masks, np.ndarray) and np.ndim(args) == 3
                        and arg_masks.any() and hasattr(layer, "forward_rows")):
                    out = layer.forward_rows(args, arg_masks)          # (N, V): real steps only
                    run["rows"].add(node.id)
                else:
                    out = layer.forward(args, mask=arg_masks, **kwargs)
            outs = out if node.multi else [out]
            if len(outs) != len(node.outputs):
                raise RuntimeError(f"layer {layer.name!r} returned {len(outs)} outputs where its graph "
                                   f"node has {len(node.outputs)}")
            out_mask = layer.compute_mask(args, arg_masks)
            if node.multi:
                out_mask = list(out_mask) if isinstance(out_mask, (list, tuple)) else \
                    [out_mask] + [None] * (len(outs) - 1)
                run["shapes"][node.id] = [(np.shape(o), np.asarray(o).dtype) for o in outs]
            else:
                out_mask = [out_mask]
            for t, o, m in zip(node.outputs, outs, out_mask):
                values[id(t)] = o
                masks[id(t)] = m
            if node.id in logits_nodes:
                run["logits"][node.id] = layer.logits
            if shared:
                self._remember(run, node, before)
            run["nodes"].append(node)
        self._run = run
        # per output: whether it came as the logits of its unmasked steps, (N, V) (its mask says which)
        self.compacted = [t.node.id in run["rows"] for t in self.outputs]
        outs = [run["logits"][t.node.id] if fused[k] else values[id(t)] for k, t in enumerate(self.outputs)]
        out_masks = [masks[id(t)] for t in self.outputs]
        self._out_masks = out_masks
        return outs, out_masks

    def _forward_folded(self, node, emb_node, values, masks, kwargs):
        """Embedding then recurrent layer at inference, without the (B, T, E) embedded sequence."""
        emb, rnn = emb_node.layer, node.layer
        ids = as_token_ids(values[id(emb_node.args)], emb.name, emb.input_dim)          # (B, T)
        emb._ids = ids                     # a backward() after this forward still finds them
        mask = emb.compute_mask(ids, masks[id(emb_node.args)])
        masks[id(emb_node.outputs[0])] = mask
        out = rnn.forward_from_embedding(ids, emb.params["embeddings"], mask=mask,
                                         initial_state=kwargs.get("initial_state"))
        return out, mask

    def _remember(self, run, node, before):
        """Save the attributes this call's forward rebound, for its backward."""
        saved = []
        for layer, b in zip(self._trees[node.id], before):
            after = dict(vars(layer))
            changed = {k for k, v in after.items() if b.get(k, _MISSING) is not v}
            run["changed"].setdefault(id(layer), set()).update(changed)
            saved.append((layer, after))
        run["states"][node.id] = saved

    @staticmethod
    def _restore(run, node):
        for layer, after in run["states"].get(node.id, []):
            for k in run["changed"].get(id(layer), ()):
                if k in after:
                    setattr(layer, k, after[k])

    @staticmethod
    def _restore_last(run):
        """Shared layers end the backward as the last call's forward left them
        (final_state, carried states, caches), as a layer called once would."""
        last = {}
        for saved in run["states"].values():              # in the order the nodes ran
            for layer, after in saved:
                last[id(layer)] = (layer, after)
        for layer, after in last.values():
            for k in run["changed"].get(id(layer), ()):
                if k in after:
                    setattr(layer, k, after[k])

    def backward(self, dout, from_logits=False):
        """Gradients of the outputs (one array, or a list) -> gradients of the inputs
        (one array or None, or a list). Fills every layer's grads."""
        douts = list(dout) if self.multi_output else [dout]
        fused = from_logits if isinstance(from_logits, (list, tuple)) else [from_logits] * len(douts)
        self.backward_heads(douts, fused=fused)
        grads = self._input_grads
        return grads if len(self.inputs) > 1 else grads[0]

    def backward_heads(self, douts, fused=None):
        run = self._run
        if run is None:
            raise RuntimeError(f"backward() called on model {self.name!r} before forward()")
        fused = fused or [False] * len(self.outputs)
        for k, t in enumerate(self.outputs):
            if fused[k] and t.node.id not in run["fused"]:
                raise ValueError(f"backward from logits for output {self.output_names[k]!r}, but the "
                                 f"forward did not return its logits")
        grads = {}

        def add(t, g):
            if g is None:
                return
            prev = grads.get(id(t))
            grads[id(t)] = g if prev is None else prev + g          # never in place: g may be a layer's

        for t, d in zip(self.outputs, douts):
            add(t, d)
        sums, touched = {}, set()
        for node in reversed(run["nodes"]):
            gs = [grads.pop(id(t), None) for t in node.outputs]
            if all(g is None for g in gs):
                continue
            layer = node.layer
            if node.id in self._shared_nodes:
                self._restore(run, node)
            if node.id in run["fused"]:
                dx = layer.backward_logits(gs[0])
            elif node.multi:
                gs = [np.zeros(s, dt) if g is None else g for g, (s, dt) in zip(gs, run["shapes"][node.id])]
                dx = layer.backward(gs)
            else:
                dx = layer.backward(gs[0])
            if isinstance(node.args, list):
                if dx is not None:
                    if not isinstance(dx, (list, tuple)) or len(dx) != len(node.args):
                        raise RuntimeError(f"layer {layer.name!r} took {len(node.args)} inputs but its "
                                           f"backward returned {type(dx).__name__}")
                    for t, g in zip(flatten(node.args), flatten(list(dx))):
                        add(t, g)
            else:
                add(node.args, dx)
            for k, tensors in node.tensor_kwargs.items():
                g = getattr(layer, k + "_grad", None)
                if g is not None:
                    for t, gt in zip(flatten(tensors), flatten(g)):
                        add(t, gt)
            for leaf in self._trees[node.id]:
                if isinstance(leaf, Container):
                    continue
                touched.add(id(leaf))
                if id(leaf) in self._shared_leaves:
                    acc = sums.get(id(leaf))
                    if acc is None:
                        sums[id(leaf)] = {k: np.array(v, copy=True) for k, v in leaf.grads.items()}
                    else:
                        for k, v in leaf.grads.items():
                            acc[k] += v
        for key, acc in sums.items():
            self._shared_leaves[key].grads = acc
        self._restore_last(run)
        for key, leaf in self._leaves.items():
            if key not in touched and leaf.params:
                leaf.zero_grads()                # no gradient reached it: not last step's
        self._input_grads = [grads.get(id(t)) for t in self.inputs]

    # ---- weights -------------------------------------------------------------------------
    def trainable_params(self):
        return {f"{n}/{k}": v for n, l in self.sublayers() if l.trainable for k, v in l.params.items()}

    def trainable_grads(self):
        return {f"{n}/{k}": v for n, l in self.sublayers() if l.trainable for k, v in l.grads.items()}

    def get_weights(self):
        return {k: v.copy() for k, v in self.params.items()}

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for l in self.layers:
            if l.name == name:
                return l
        raise ValueError(f"model {self.name!r} has no layer {name!r}; it has {[l.name for l in self.layers]}")

    # ---- compile, fit, evaluate, predict -----------------------------------------------------
    def _per_output(self, value, what, default):
        """A compile argument as one entry per output: a list, a dict by output name, or
        one value for every output."""
        names = self.output_names
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"{what} names outputs {unknown}; model {self.name!r} has outputs {names}")
            return [value.get(k, default) for k in names]
        if isinstance(value, (list, tuple)) and what != "metrics":
            if len(value) != len(names):
                raise ValueError(f"{what} as a list needs one entry per output ({len(names)}: {names}); "
                                 f"got {len(value)}")
            return list(value)
        return [value] * len(names)

    def compile(self, optimizer="adam", loss=None, metrics=None, loss_weights=None):
        """loss: one for every output, a list (one per output) or a dict by output name
        (outputs left out are not trained); loss_weights: list or dict, default 1;
        metrics: a list for every output, a list of lists, or a dict by output name."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='categorical_crossentropy'; got loss=None")
        loss_list = self._per_output(loss, "loss", None)
        if all(l is None for l in loss_list):
            raise ValueError(f"compile needs a loss for at least one output of {self.output_names}")
        shared = not isinstance(loss, (list, tuple, dict))
        loss_list = [None if l is None else
                     (training.clone_loss(losses.get(l)) if shared else losses.get(l)) for l in loss_list]
        weights = [1.0] * len(loss_list) if loss_weights is None else \
            [float(w) for w in self._per_output(loss_weights, "loss_weights", 1.0)]
        if metrics is None:
            metric_specs = [[] for _ in loss_list]
        elif isinstance(metrics, dict):
            metric_specs = [m if isinstance(m, (list, tuple)) else [m] for m in self._per_output(metrics, "metrics", [])]
        elif isinstance(metrics, (list, tuple)) and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
            if len(metrics) != len(loss_list):
                raise ValueError(f"metrics as a list of lists needs one list per output ({len(loss_list)})")
            metric_specs = [list(m) for m in metrics]
        else:
            metric_specs = [list(metrics) for _ in loss_list]
        self.heads = []
        for name, l, w, specs in zip(self.output_names, loss_list, weights, metric_specs):
            # a Metric object keeps running sums: each output gets its own copy
            ms = [copy.deepcopy(metrics_mod.get(m, l.name)) for m in specs] if l is not None else []
            self.heads.append(Head(name, l, w, ms))
        self._metric_specs = [[m if isinstance(m, str) else m.name for m in specs] for specs in metric_specs]
        self.optimizer = optimizers.get(optimizer)
        self.loss = loss_list[0] if len(loss_list) == 1 else loss_list
        self.metrics = [m for h in self.heads for m in h.metrics]
        self.compiled = True

    # ---- description -----------------------------------------------------------------------
    def _model_nodes(self, layer):
        """The nodes of a layer that belong to this model, in creation order."""
        ids = {n.id for n in self._nodes}
        return [n for n in layer._inbound_nodes if n.id in ids]

    def summary(self, print_fn=print, line_length=None):
        """Keras's table, with the "Connected to" column: layer_name[node_index][tensor_index]."""
        rows = []
        for layer in self.layers:
            if isinstance(layer, InputLayer):
                nodes = layer._inbound_nodes[:1]
                connected = ["-"]
            else:
                nodes = self._model_nodes(layer)
                connected = []
                for node in nodes:
                    for t in node.inputs:
                        name, n, i = t.ref
                        connected.append(f"{name}[{n}][{i}]")
            shapes = {tuple(tuple(t.shape) for t in node.outputs) for node in nodes}
            if len(shapes) == 1:
                outs = next(iter(shapes))
                shape = ", ".join(_fmt_shape(s) for s in outs)
                shape = f"[{shape}]" if len(outs) > 1 else shape
            else:
                shape = "multiple"
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}",
                         connected or ["-"]))
        widths = [max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2,
                  max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2,
                  max([len("Param #")] + [len(r[2]) for r in rows]) + 2,
                  max([len("Connected to")] + [len(c) for r in rows for c in r[3]])]
        width = max(line_length or 0, sum(widths))
        fmt = lambda cells: "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        lines = [f'Model: "{self.name}"', "_" * width, fmt(["Layer (type)", "Output Shape", "Param #",
                                                            "Connected to"]), "=" * width]
        for i, (name, shape, count, connected) in enumerate(rows):
            lines.append(fmt([name, shape, count, connected[0]]))
            lines += [fmt(["", "", "", c]) for c in connected[1:]]
            lines.append(("_" if i < len(rows) - 1 else "=") * width)
        layers = [l for _, l in self.sublayers()]
        total = sum(l.count_params() for l in layers)
        trainable = sum(l.count_params() for l in layers if l.trainable)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * width]
        print_fn("\n".join(lines))

    # ---- saving --------------------------------------------------------------------------
    def get_config(self):
        """The layers' configs and the calls, in order; a tensor is written as
        {"tensor": [layer name, node index within this model, output index]}."""
        index = {}
        for layer in self.layers:
            nodes = layer._inbound_nodes[:1] if isinstance(layer, InputLayer) else self._model_nodes(layer)
            for i, node in enumerate(nodes):
                index[node.id] = i

        def ref(t):
            if t.node.id not in index:
                raise ValueError(f"model {self.name!r} cannot be saved: tensor {t!r} is an input that no "
                                 f"lk.Input made")
            return {"tensor": [t.node.layer.name, index[t.node.id], t.index]}

        nodes = []
        for node in self._nodes:
            for k, v in node.const_kwargs.items():
                if not isinstance(v, (bool, int, float, str, type(None))):
                    raise ValueError(f"model {self.name!r} cannot be saved: layer {node.layer.name!r} was "
                                     f"called with {k}={v!r}, which is not a plain value")
            nodes.append({"layer": node.layer.name, "args": map_structure(ref, node.args),
                          "kwargs": {k: map_structure(ref, v) for k, v in node.tensor_kwargs.items()},
                          "const_kwargs": dict(node.const_kwargs)})
        cfg = super().get_config()
        cfg.update(layers=[serialize_layer(l) for l in self.layers], nodes=nodes,
                   inputs=[ref(t) for t in self.inputs], outputs=[ref(t) for t in self.outputs],
                   multi_output=self.multi_output)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layers = {}
        for spec in config.pop("layers"):
            layer = layer_from_config(spec)
            layers[layer.name] = layer
        made = {}
        for name, layer in layers.items():
            if isinstance(layer, InputLayer):
                made[(name, 0)] = [layer._inbound_nodes[0].outputs[0]]

        def resolve(r):
            if isinstance(r, dict) and set(r) == {"tensor"}:
                name, n, i = r["tensor"]
                return made[(name, n)][i]
            if isinstance(r, list):
                return [resolve(x) for x in r]
            raise ValueError(f"bad tensor reference {r!r} in a saved model")

        counts = {}
        for spec in config.pop("nodes"):
            layer = layers[spec["layer"]]
            args = resolve(spec["args"])
            kwargs = {k: resolve(v) for k, v in spec["kwargs"].items()}
            kwargs.update(spec.get("const_kwargs", {}))
            out = layer(args, **kwargs)
            n = counts.get(layer.name, 0)
            counts[layer.name] = n + 1
            made[(layer.name, n)] = out if isinstance(out, list) else [out]
        inputs = [resolve(r) for r in config.pop("inputs")]
        outputs = [resolve(r) for r in config.pop("outputs")]
        multi = config.pop("multi_output", len(outputs) > 1)
        for key in ("dtype", "trainable"):
            config.pop(key, None)
        return cls(inputs=inputs if len(inputs) > 1 else inputs[0],
                   outputs=outputs if multi else outputs[0], **config)

    def compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": optimizers.serialize(self.optimizer),
                "loss": [None if h.loss is None else losses.serialize(h.loss) for h in self.heads],
                "loss_weights": [h.weight for h in self.heads], "metrics": self._metric_specs}

    def compile_from_config(self, cc):
        loss = [None if l is None else losses.deserialize(l) for l in cc["loss"]]
        self.compile(optimizer=optimizers.deserialize(cc["optimizer"]), loss=loss,
                     loss_weights=cc.get("loss_weights"), metrics=cc.get("metrics"))

