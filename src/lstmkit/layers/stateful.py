"""stateful=True: a recurrent layer starts each batch from the final state of
the previous one (row b continues row b), as Keras's ``stateful=True``.

This is truncated backpropagation through time over a long sequence cut into
consecutive windows, the way char-rnn trains: the carried state is a constant
for the next batch, so gradients stop at the window boundary. The batch size
is fixed from the first batch after construction or reset_states(): a batch
of another size has no state to continue and is refused. An explicit
initial_state wins over the carried one (as in Keras); the final state is kept
either way. Training and inference both carry and update the state.
"""
import numpy as np


class StatefulMixin:
    """For layers with ``stateful``, ``state_names``, ``units``-like state sizes
    (``_state_shapes(B)``) and ``dtype``; the layer calls ``_carried_state(B)``
    before its forward and ``_keep_state(final)`` after it."""

    stateful = False
    states = None

    def _carried_state(self, initial_state, B):
        """initial_state, or the state carried from the previous batch when
        the layer is stateful and none was given."""
        if initial_state is not None or not self.stateful or self.states is None:
            return initial_state
        kept = self.states[0].shape[0]
        if B != kept:
            raise ValueError(f"{type(self).__name__} {self.name!r} is stateful and carries the state of "
                             f"{kept} sequences from the previous batch; got a batch of {B}. Keep the "
                             f"batch size fixed (fit: make the sample count a multiple of batch_size), "
                             f"or call reset_states() before changing it")
        return self.states

    def _keep_state(self, state):
        if self.stateful:
            self.states = tuple(np.array(s, dtype=self.dtype, copy=True) for s in state)

    def reset_states(self, states=None):
        """Forget the carried state (the next batch starts from zeros and may
        have any batch size), or set it: states is a tuple shaped like
        final_state (a bare array for one-state cells)."""
        if states is None:
            self.states = None
            return
        if isinstance(states, np.ndarray):
            states = (states,)
        names = self.state_names
        if len(states) != len(names):
            raise ValueError(f"reset_states for {type(self).__name__} {self.name!r} takes {len(names)} "
                             f"arrays {names}; got {len(states)}")
        states = tuple(np.array(s, dtype=self.dtype, copy=True) for s in states)
        B = states[0].shape[0]
        for name, s, shape in zip(names, states, self._state_shapes(B)):
            if s.shape != shape:
                raise ValueError(f"reset_states: state {name!r} of {type(self).__name__} {self.name!r} "
                                 f"must have shape {shape}; got {s.shape}")
        self.states = states
