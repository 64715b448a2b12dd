"""The Embedding gradient as a compiled row loop.

The gradient of a lookup is a scatter-add: row ids[k] of the (V, E) table
collects dout[k]. NumPy has no fast scatter-add over rows (np.add.at is
slow), so the layer used to sort the ids and np.add.reduceat the sorted rows:
a sort, three fancy-indexing copies and a few (B*T,) temporaries per step.
Here it is one loop over the B*T rows in their original order: a row looked
up several times gets its gradients summed first to last, as np.add.at does
(bit for bit; reduceat grouped the additions differently, so the old sums
differed from these in the last bits).

The (V, E) gradient table lives across steps and only the rows written last
step are cleared, because zeroing all V rows costs more than the sums. The
kernel keeps the list of those rows itself (`touched`, its first n_touched
entries) instead of keeping the ids: the caller's id array may be reused and
overwritten between steps, the list may not.
"""
from numba import njit

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_JIT)
def scatter_add_rows(table, ids, dout, touched, n_touched, seen):
    """table[r] = sum of dout[k] over k with ids[k] == r, for every row r; 0 for
    the rest. table (V, E) must hold non-zeros only in rows touched[:n_touched]
    (last step's rows). ids (N,) int64 in [0, V); dout (N, E); touched (V,)
    int64; seen (V,) bool, all False. Returns the new n_touched (this step's
    distinct rows, now listed in touched) and leaves seen all False again."""
    E = table.shape[1]
    for i in range(n_touched):                      # last step's rows back to zero
        r = touched[i]
        for j in range(E):
            table[r, j] = 0.0
    n = 0
    for k in range(ids.size):
        r = ids[k]
        if seen[r]:
            for j in range(E):
                table[r, j] += dout[k, j]
        else:                                       # the row's first id this step: assign, no zeroing needed
            seen[r] = True
            touched[n] = r
            n += 1
            for j in range(E):
                table[r, j] = dout[k, j]
    for i in range(n):
        seen[touched[i]] = False
    return n

