"""A software prefetch inside compiled loops (LLVM's llvm.prefetch).

The folded-embedding inference loops read, per step, one table row per
sequence at a token id: rows scattered over a table (vocab x G*H) bigger
than L2, each read a cache miss. The ids of the next step are known a step
ahead, so the loop asks for those rows while it computes the current step,
and the misses overlap with the arithmetic instead of stalling the gather.

On CPUs without a prefetch instruction LLVM drops the call; a prefetch never
faults, so an address past the end of an array would be harmless, but the
callers stay inside their arrays anyway.
"""
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_i32 = ir.IntType(32)


@intrinsic
def prefetch(typingctx, arr, index):
    """Hint that arr.flat[index] (a C-contiguous array) will be read soon; no effect on results."""
    if not (isinstance(arr, types.Array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        arr_ty = signature.args[0]
        array = context.make_array(arr_ty)(context, builder, value=args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(array.data, [idx])
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(), _i32, _i32, _i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, ir.PointerType()), ir.Constant(_i32, 0),
                          ir.Constant(_i32, 3), ir.Constant(_i32, 1)])
        return context.get_dummy_value()
    return types.void(arr, index), codegen
