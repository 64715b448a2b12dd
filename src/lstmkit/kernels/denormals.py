"""Flush subnormal floats to zero inside the kernels (x86 MXCSR FTZ + DAZ).

Backpropagated gradients shrink step by step; over hundreds of steps in
float32 they reach the subnormal range (< 1.2e-38), where x86 arithmetic takes
a slow microcode path, many times slower per operation. Setting the FTZ
(flush results to zero) and DAZ (treat subnormal inputs as zero) bits of MXCSR
avoids it. MXCSR is per thread, so every compiled loop sets the bits when it
starts and restores the caller's value before it returns: nothing outside the
kernel (NumPy, the user's code) sees a changed floating-point mode. The values
changed are below 1.2e-38 in float32 (2.2e-308 in float64), far under the
tolerances of the tests.

On other CPUs both functions are no-ops.
"""
import platform

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

FTZ_DAZ_BITS = 0x8040          # bit 15 flush-to-zero, bit 6 denormals-are-zero
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")

_i32 = ir.IntType(32)


def _mxcsr_call(builder, name, slot):
    fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType()])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [slot])


@intrinsic
def flush_denormals_begin(typingctx):
    """Set FTZ and DAZ; return the previous MXCSR for flush_denormals_end."""
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, _i32)
        if not IS_X86:
            return ir.Constant(_i32, 0)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        old = builder.load(slot)
        builder.store(builder.or_(old, ir.Constant(_i32, FTZ_DAZ_BITS)), slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return old
    return types.uint32(), codegen


@intrinsic
def flush_denormals_end(typingctx, old):
    """Restore the MXCSR value returned by flush_denormals_begin."""
    def codegen(context, builder, signature, args):
        if IS_X86:
            slot = cgutils.alloca_once(builder, _i32)
            builder.store(args[0], slot)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()
    return types.void(old), codegen
