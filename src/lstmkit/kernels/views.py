"""Views into C-contiguous arrays for the compiled steps, cheap to compile.

    run(a, (i, j, k), n)            the n numbers of a from a[i, j, k] on, flat (n,)
    block(a, (i, j, k), rows, cols) the same run as a (rows, cols) matrix

so a.gates[q, t, base:base + P] is run(a.gates, (q, t, base), P), and
a.z[q, base:base + P].reshape((n, H)) is block(a.z, (q, base), n, H). The
index tuple has one entry per dimension of a; the run may cross rows (in C
order), so a.loop.carry[0, lo:lo + n].reshape(n * H) is
run(a.loop.carry, (0, lo, 0), n * H).

Why: numba lowers every basic slice through its general indexing code
(negative indices wrapped, each slice's bounds clipped and its length
computed, every dimension's shape and stride), and every reshape through a
call to its general no-copy reshape, with the error path of each. That is
Python work at lowering, per slice, and LLVM work after; the cells' steps
make a few dozen views per step. These make the same view from a pointer
offset and the known shape and strides, with no checks: the caller
guarantees the run lies inside a (the steps' runs always do). The numbers
the steps compute are the same, read and written at the same addresses.
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _check(a, index):
    return (isinstance(a, types.Array) and a.layout == "C" and isinstance(index, types.BaseTuple)
            and len(index) == a.ndim and all(isinstance(i, types.Integer) for i in index))


def _view(context, builder, sig, a, index, shape):
    """The view of sig.return_type over a's numbers from a[index] on, C
    strides for `shape` (LLVM intp values)."""
    aty, ity = sig.args[0], sig.args[1]
    src = make_array(aty)(context, builder, a)
    intp = types.intp
    idx = [context.cast(builder, builder.extract_value(index, k), ity[k], intp)
           for k in range(len(ity))]
    ptr = cgutils.get_item_pointer2(context, builder, src.data, cgutils.unpack_tuple(builder, src.shape),
                                    cgutils.unpack_tuple(builder, src.strides), "C", idx,
                                    wraparound=False, boundscheck=False)
    itemsize = src.itemsize
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    out = make_array(sig.return_type)(context, builder)
    populate_array(out, data=ptr, shape=shape, strides=strides, itemsize=itemsize,
                   meminfo=src.meminfo, parent=src.parent)
    value = out._getvalue()
    if context.enable_nrt:
        context.nrt.incref(builder, sig.return_type, value)   # a view: a new reference to a's memory
    return value


@intrinsic
def run(typingctx, a, index, n):
    """a's n numbers from a[index] on, as a flat view (see the module docstring)."""
    if not (_check(a, index) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        length = context.cast(builder, args[2], sig.args[2], types.intp)
        return _view(context, builder, sig, args[0], args[1], [length])
    return types.Array(a.dtype, 1, "C", readonly=not a.mutable)(a, index, n), codegen


@intrinsic
def block(typingctx, a, index, rows, cols):
    """a's rows * cols numbers from a[index] on, as a (rows, cols) view."""
    if not (_check(a, index) and isinstance(rows, types.Integer) and isinstance(cols, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        shape = [context.cast(builder, v, t, types.intp) for v, t in zip(args[2:], sig.args[2:])]
        return _view(context, builder, sig, args[0], args[1], shape)
    return types.Array(a.dtype, 2, "C", readonly=not a.mutable)(a, index, rows, cols), codegen
