"""A matrix product for the per-step work of large hidden sizes, over
weights packed once per call.

Every step of a recurrent loop multiplies a few rows (the batch chunk) by the
same weight matrix. BLAS repacks the weight operand on each call, and for a
(512 x 512) block multiplied by 32 rows that packing took longer than the
arithmetic (`perf` on the B inference loop: 48% of the time in OpenBLAS's
`sgemm_itcopy`, 32% in its compute kernel). Here the weights are packed once
per forward or backward call, in panels of 32 columns, (N/32, K, 32), and
each step runs a register-tiled kernel over them: 4 rows x 32 columns of C
stay in vector registers while k runs over K, each step of k one load of 32
weights, 4 broadcasts of A and 8 (float32) fused multiply-adds.

Numba has no SIMD types and LLVM did not vectorise the same kernel written
with 128 scalar accumulators (5 GFLOP/s), so the tile is written directly in
LLVM IR through an intrinsic: accumulators are vector phi nodes, which LLVM
keeps in registers. Measured on one core (per call, 50 calls in a loop):
(32 x 512)(512 x 512) 105 GFLOP/s against OpenBLAS's 72, (32 x 512)(512 x
2048) 106 against 55; at (32 x 65)(65 x 128) both reach 102.

pack(W) needs N to be a multiple of 32 (`packable`); other sizes keep np.dot.
Numba's cache does not see edits to this file from the kernels that inline
it: delete kernels/__pycache__ after changing it.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .workspace import aligned_zeros

PANEL = 32                                     # columns per packed panel (C columns per tile)
_JIT = dict(cache=True, nogil=True, error_model="numpy")


def packable(N):
    return N % PANEL == 0 and N > 0


def pack(W):
    """W (K, N) -> (N/32, K, 32): panel p holds columns 32p..32p+31, row by row."""
    K, N = W.shape
    if not packable(N):
        raise ValueError(f"pack: the number of columns must be a multiple of {PANEL}; got {N}")
    Wp = aligned_zeros((N // PANEL, K, PANEL), W.dtype)        # each panel row one or two whole cache lines
    Wp[...] = W.reshape(K, N // PANEL, PANEL).transpose(1, 0, 2)
    return Wp


def _make_tile(MR):
    """An intrinsic C[r0:r0+MR, 32p:32p+32] = A[r0:r0+MR, :K] @ panel p of Wp."""
    @intrinsic
    def tile(typingctx, A, r0, Wp, p, C, K):
        if not (isinstance(A, types.Array) and A.ndim == 2 and isinstance(Wp, types.Array)
                and Wp.ndim == 3 and isinstance(C, types.Array) and C.ndim == 2
                and A.dtype == Wp.dtype == C.dtype and A.dtype in (types.float32, types.float64)):
            return None
        sig = types.void(A, types.intp, Wp, types.intp, C, types.intp)

        def codegen(context, builder, signature, args):
            A_, r0_, Wp_, p_, C_, K_ = args
            aty, wty, cty = signature.args[0], signature.args[2], signature.args[4]
            fty = context.get_value_type(aty.dtype)
            lanes = 16 if aty.dtype == types.float32 else 8       # one 512-bit register
            nv = PANEL // lanes
            size = context.get_abi_sizeof(fty)
            vec = ir.VectorType(fty, lanes)
            i64 = ir.IntType(64)
            c = lambda v: ir.Constant(i64, v)

            def parts(aryty, val):
                ary = context.make_array(aryty)(context, builder, val)
                strides = cgutils.unpack_tuple(builder, ary.strides)
                return ary.data, [builder.sdiv(s, c(size)) for s in strides]
            a_data, a_str = parts(aty, A_)
            w_data, w_str = parts(wty, Wp_)
            c_data, c_str = parts(cty, C_)
            a_base = builder.gep(a_data, [builder.mul(r0_, a_str[0])])
            w_base = builder.gep(w_data, [builder.mul(p_, w_str[0])])
            c_base = builder.gep(c_data, [builder.add(builder.mul(r0_, c_str[0]),
                                                      builder.mul(p_, c(PANEL)))])
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec, vec, vec]),
                f"llvm.fma.v{lanes}{'f32' if lanes == 16 else 'f64'}")
            zero = ir.Constant(vec, [0.0] * lanes)
            undef = ir.Constant(vec, ir.Undefined)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            entry = builder.block
            loop = builder.append_basic_block("tile_k")
            done = builder.append_basic_block("tile_done")
            builder.cbranch(builder.icmp_signed(">", K_, c(0)), loop, done)

            builder.position_at_end(loop)
            k = builder.phi(i64)
            k.add_incoming(c(0), entry)
            acc = []
            for _ in range(MR * nv):
                phi = builder.phi(vec)
                phi.add_incoming(zero, entry)
                acc.append(phi)
            w_row = builder.gep(w_base, [builder.mul(k, w_str[1])])
            w = []
            for v in range(nv):
                ld = builder.load(builder.bitcast(builder.gep(w_row, [c(v * lanes)]), vec.as_pointer()))
                ld.align = size
                w.append(ld)
            new = []
            for r in range(MR):
                a = builder.load(builder.gep(a_base, [builder.add(builder.mul(c(r), a_str[0]),
                                                                   builder.mul(k, a_str[1]))]))
                a_all = builder.shuffle_vector(
                    builder.insert_element(undef, a, ir.Constant(ir.IntType(32), 0)), undef, splat)
                for v in range(nv):
                    new.append(builder.call(fma, [a_all, w[v], acc[r * nv + v]]))
            k_next = builder.add(k, c(1))
            k.add_incoming(k_next, builder.block)
            for phi, value in zip(acc, new):
                phi.add_incoming(value, builder.block)
            builder.cbranch(builder.icmp_signed("<", k_next, K_), loop, done)

            builder.position_at_end(done)
            outs = []
            for value in new:                                  # phis first: LLVM wants them on top
                out = builder.phi(vec)
                out.add_incoming(zero, entry)
                out.add_incoming(value, loop)
                outs.append(out)
            for r in range(MR):
                for v in range(nv):
                    dst = builder.gep(c_base, [builder.add(builder.mul(c(r), c_str[0]),
                                                           c(v * lanes))])
                    st = builder.store(outs[r * nv + v], builder.bitcast(dst, vec.as_pointer()))
                    st.align = size
            return context.get_dummy_value()
        return sig, codegen
    return tile


_tile4 = _make_tile(4)
_tile1 = _make_tile(1)


@njit(**_JIT)
def packed_dot(A, Wp, C):
    """C (M, N) = A (M, K) @ W, with Wp = pack(W) (N/32, K, 32). A and C may be
    row slices of bigger arrays, but each row must be contiguous."""
    M, K = A.shape
    if Wp.shape[1] != K or Wp.shape[2] != PANEL or C.shape[0] != M or C.shape[1] != Wp.shape[0] * PANEL:
        raise ValueError("packed_dot: shapes of A, packed W and C do not agree")
    if A.strides[1] != A.itemsize or C.strides[1] != C.itemsize:
        raise ValueError("packed_dot: rows of A and C must be contiguous")
    M4 = M - M % 4
    for p in range(Wp.shape[0]):
        for r0 in range(0, M4, 4):
            _tile4(A, r0, Wp, p, C, K)
        for r in range(M4, M):
            _tile1(A, r, Wp, p, C, K)


# From this hidden size on, the recurrent kernels run their per-step products
# with W_h through packed_dot (below it BLAS is as fast: 102 GFLOP/s either way
# at (32 x 65)(65 x 128), and no gain measured at H = 32 in the LSTM loop).
PACKED_MIN_HIDDEN = 128


def use_packed(H):
    return H >= PACKED_MIN_HIDDEN and packable(H)


def pack_blocks(Wq):
    """Per-block pack: Wq (G, K, N) -> (G, N/32, K, 32), each block's panels
    on 64-byte boundaries."""
    G, K, N = Wq.shape
    out = aligned_zeros((G, N // PANEL, K, PANEL), Wq.dtype)
    for g in range(G):
        out[g] = pack(Wq[g])
    return out


def blocks_or_placeholder(Wq, packed):
    """pack_blocks(Wq) when packed, else a (G, 1, 1, 1) stand-in of the same
    type, so the compiled loops see one signature either way."""
    return pack_blocks(Wq) if packed else np.empty((Wq.shape[0], 1, 1, 1), Wq.dtype)


@njit(**_JIT)
def dot(A, W, Wp, packed, C):
    """C = A @ W: packed_dot over Wp = pack(W) when packed, else np.dot."""
    if packed:
        packed_dot(A, Wp, C)
    else:
        np.dot(A, W, C)
