"""Every matrix product of the fast engine, over weights packed once.

    C (M, N) = A (M, K) @ W (K, N)        or  C += A @ W

W is packed by `pack` into panels of 32 columns, (ceil(N/32), K, 32), zero
padded on the right; `dot` then runs a register tile per panel: 8 rows x 32
columns of C stay in vector registers while k runs, each step of k one
vector load of 32 weights, 8 broadcasts of A and 16 (float32) or 32 (float64)
fused multiply-adds (16 accumulators: twice the FMA latency times its two
pipes, so the pipes never wait; 4-row tiles were 10-25% slower, measured in
thread CPU time on the shapes of workload D). Leftover rows take a 4-row and
then 1-row tiles, which accumulate alike. The same code serves the per-step products inside the
time loops (a batch chunk of rows times W_h) and the whole-sequence products
around them (x W_x for all steps, dx, the weight gradients), which block k by
KC and rows by MC so that a panel block stays in L1 and the rows of A it
meets in L2.

Why not BLAS (docs/kernels.md, "Products"):
  * BLAS repacks W on every call; per step that packing was not amortised
    (`perf` on the B inference loop: 48% in OpenBLAS's sgemm_itcopy, 32% in
    its compute kernel).
  * OpenBLAS starts its own threads for a product above 4 * 65536
    multiply-adds; inside the engine's own threads that oversubscribes the
    cores, and the only cure, setting BLAS's thread count, is process-wide.
    Products here never start threads: the engine's threads split the rows.
  * Every output row is computed by the same instructions in the same order
    whatever rows it is grouped with (the 4-row and the 1-row tile accumulate
    alike, and the k blocks are fixed), so results do not depend on how the
    rows are split over threads.

Numba has no SIMD types and LLVM did not vectorise the same tile written with
128 scalar accumulators (5 GFLOP/s), so the tile is LLVM IR through an
intrinsic: the accumulators are vector phi nodes, which LLVM keeps in
registers. A partial last panel (N not a multiple of 32) is written through
masked stores.
"""
import numpy as np
from llvmlite import ir
from numba import njit, typeof, types
from numba._dispatcher import compute_fingerprint as _fingerprint
from numba.core import cgutils
from numba.extending import intrinsic

from .support import INLINE
from .workspace import aligned_zeros

PANEL = 32                     # columns per packed panel (C columns per tile)
KC = 256                       # k block of the big products: a panel block of 32 KB (float32) in L1
MC = 128                       # row block: 128 x 256 numbers of A (128 KB) in L2

_JIT = dict(cache=True, nogil=True, error_model="numpy")


def n_panels(N):
    return -(-N // PANEL)


def pack(W, out=None, empty=None):
    """W (K, N) -> (ceil(N/32), K, 32): panel p holds columns 32p..32p+31,
    row by row, zeros past column N. Aligned, so a panel row is whole cache
    lines. empty(shape, dtype): where the result comes from (a call's
    workspace scope, whose reused memory costs no page faults), else new
    memory."""
    K, N = W.shape
    P = n_panels(N)
    if out is None:
        out = (aligned_zeros if empty is None else empty)((P, K, PANEL), W.dtype)
    Wp = out
    full = N // PANEL
    Wp[:full] = W[:, :full * PANEL].reshape(K, full, PANEL).transpose(1, 0, 2)
    if full < P:
        Wp[full, :, :N - full * PANEL] = W[:, full * PANEL:]
        Wp[full, :, N - full * PANEL:] = 0
    return Wp


def pack_gates(W, n_gates, empty=None):
    """W (K, G*H) -> (G, ceil(H/32), K, 32): each gate's block packed on its
    own, so that a product writes one gate's (rows, H) block (empty: as in
    pack)."""
    K, GH = W.shape
    H = GH // n_gates
    out = (aligned_zeros if empty is None else empty)((n_gates, n_panels(H), K, PANEL), W.dtype)
    for q in range(n_gates):
        pack(W[:, q * H:(q + 1) * H], out[q])
    return out


def pack_rows_by_gate(W, n_gates, empty=None):
    """W (K, G*H) -> (G, ceil(K/32), H, 32): gate q's block transposed,
    W[:, qH:(q+1)H]^T (H, K), packed -- what a gradient dz_q (rows, H)
    multiplies to reach the inputs of z = A W (empty: as in pack)."""
    K, GH = W.shape
    H = GH // n_gates
    P = n_panels(K)
    out = (aligned_zeros if empty is None else empty)((n_gates, P, H, PANEL), W.dtype)
    # out[q, p, h, c] = W[32p + c, qH + h], in one copy: transposing each gate's
    # block and then packing it took 2.7x as long (0.56 against 0.2 ms at
    # K = H = 256, four times per layer and training step in workload D)
    full = K // PANEL
    out[:, :full] = W[:full * PANEL].reshape(full, PANEL, n_gates, H).transpose(2, 0, 3, 1)
    if full < P:
        r = K - full * PANEL
        out[:, full, :, :r] = W[full * PANEL:].reshape(r, n_gates, H).transpose(1, 2, 0)
        out[:, full, :, r:] = 0
    return out


def _make_tile(MR):
    """An intrinsic tile(A, r0, Wp, p, k0, k1, C, c0, ncols, acc):
    C[r0:r0+MR, c0:c0+ncols] (+)= A[r0:r0+MR, k0:k1] @ Wp[p, k0:k1, :ncols]."""
    @intrinsic
    def tile(typingctx, A, r0, Wp, p, k0, k1, C, c0, ncols, acc):
        if not (isinstance(A, types.Array) and A.ndim == 2 and isinstance(Wp, types.Array)
                and Wp.ndim == 3 and isinstance(C, types.Array) and C.ndim == 2
                and A.dtype == Wp.dtype == C.dtype and A.dtype in (types.float32, types.float64)):
            return None
        ip = types.intp
        sig = types.void(A, ip, Wp, ip, ip, ip, C, ip, ip, types.boolean)

        def codegen(context, builder, signature, args):
            A_, r0_, Wp_, p_, k0_, k1_, C_, c0_, ncols_, acc_ = args
            aty, wty, cty = signature.args[0], signature.args[2], signature.args[6]
            fty = context.get_value_type(aty.dtype)
            lanes = 16 if aty.dtype == types.float32 else 8       # one 512-bit register
            nv = PANEL // lanes
            size = context.get_abi_sizeof(fty)
            vec = ir.VectorType(fty, lanes)
            i1, i32, i64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
            c = lambda v: ir.Constant(i64, v)
            suffix = f"v{lanes}{'f32' if lanes == 16 else 'f64'}"

            def parts(aryty, val):
                ary = context.make_array(aryty)(context, builder, val)
                strides = cgutils.unpack_tuple(builder, ary.strides)
                return ary.data, [builder.sdiv(s, c(size)) for s in strides]
            a_data, a_str = parts(aty, A_)
            w_data, w_str = parts(wty, Wp_)
            c_data, c_str = parts(cty, C_)
            a_base = builder.gep(a_data, [builder.mul(r0_, a_str[0])])
            w_base = builder.gep(w_data, [builder.mul(p_, w_str[0])])
            c_base = builder.gep(c_data, [builder.add(builder.mul(r0_, c_str[0]), c0_)])
            fn = lambda name, ret, params: cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ret, params), name)
            fma = fn(f"llvm.fma.{suffix}", vec, [vec, vec, vec])
            ptr = ir.PointerType()
            mload = fn(f"llvm.masked.load.{suffix}.p0", vec, [ptr, i32, ir.VectorType(i1, lanes), vec])
            mstore = fn(f"llvm.masked.store.{suffix}.p0", ir.VoidType(),
                        [vec, ptr, i32, ir.VectorType(i1, lanes)])
            zero = ir.Constant(vec, [0.0] * lanes)
            undef = ir.Constant(vec, ir.Undefined)
            splat0 = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            entry = builder.block
            loop = builder.append_basic_block("tile_k")
            done = builder.append_basic_block("tile_done")
            builder.cbranch(builder.icmp_signed("<", k0_, k1_), loop, done)

            builder.position_at_end(loop)
            k = builder.phi(i64)
            k.add_incoming(k0_, entry)
            accs = []
            for _ in range(MR * nv):
                phi = builder.phi(vec)
                phi.add_incoming(zero, entry)
                accs.append(phi)
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
                a_all = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(i32, 0)),
                                               undef, splat0)
                for v in range(nv):
                    new.append(builder.call(fma, [a_all, w[v], accs[r * nv + v]]))
            k_next = builder.add(k, c(1))
            k.add_incoming(k_next, builder.block)
            for phi, value in zip(accs, new):
                phi.add_incoming(value, builder.block)
            builder.cbranch(builder.icmp_signed("<", k_next, k1_), loop, done)

            builder.position_at_end(done)
            outs = []
            for value in new:                                  # phis first: LLVM wants them on top
                out = builder.phi(vec)
                out.add_incoming(zero, entry)
                out.add_incoming(value, loop)
                outs.append(out)
            # lane l of vector v is column v*lanes + l: stored when < ncols, added to C when acc
            n32 = builder.trunc(ncols_, i32)
            n_all = builder.shuffle_vector(builder.insert_element(
                ir.Constant(ir.VectorType(i32, lanes), ir.Undefined), n32, ir.Constant(i32, 0)),
                ir.Constant(ir.VectorType(i32, lanes), ir.Undefined), splat0)
            acc_all = builder.shuffle_vector(builder.insert_element(
                ir.Constant(ir.VectorType(i1, lanes), ir.Undefined), acc_, ir.Constant(i32, 0)),
                ir.Constant(ir.VectorType(i1, lanes), ir.Undefined), splat0)
            align = ir.Constant(i32, size)
            for v in range(nv):
                cols = ir.Constant(ir.VectorType(i32, lanes), [v * lanes + l for l in range(lanes)])
                keep = builder.icmp_signed("<", cols, n_all)
                add = builder.and_(keep, acc_all)
                for r in range(MR):
                    dst = builder.gep(c_base, [builder.add(builder.mul(c(r), c_str[0]), c(v * lanes))])
                    old = builder.call(mload, [dst, align, add, zero])
                    builder.call(mstore, [builder.fadd(outs[r * nv + v], old), dst, align, keep])
            return context.get_dummy_value()
        return sig, codegen
    return tile


_tile8 = _make_tile(8)
_tile4 = _make_tile(4)
_tile1 = _make_tile(1)


@njit(**INLINE)
def _rows(lo, hi, A, Wp, C, accumulate):
    """C[lo:hi] = A[lo:hi] @ W (accumulate: +=), Wp = pack(W), for W (K, N)
    with N = C.shape[1]. A may have any strides (A = X.T works); C's rows
    must be contiguous."""
    K = A.shape[1]
    N = C.shape[1]
    if hi <= lo or N == 0:
        return
    if Wp.shape[1] != K or Wp.shape[2] != PANEL or Wp.shape[0] * PANEL < N or C.shape[0] < hi:
        raise ValueError("gemm.dot: shapes of A, packed W and C do not agree")
    if C.strides[1] != C.itemsize:
        raise ValueError("gemm.dot: the rows of C must be contiguous")
    P = (N + PANEL - 1) // PANEL
    for m0 in range(lo, hi, MC):
        m1 = m0 + MC if m0 + MC < hi else hi
        m8 = m0 + (m1 - m0) // 8 * 8
        m4 = m8 + (m1 - m8) // 4 * 4
        for k0 in range(0, K if K > 0 else 1, KC):             # K = 0: one pass that writes zeros
            k1 = k0 + KC if k0 + KC < K else K
            add = accumulate or k0 > 0
            for p in range(P):
                ncols = N - p * PANEL if N - p * PANEL < PANEL else PANEL
                for r0 in range(m0, m8, 8):
                    _tile8(A, r0, Wp, p, k0, k1, C, p * PANEL, ncols, add)
                for r0 in range(m8, m4, 4):
                    _tile4(A, r0, Wp, p, k0, k1, C, p * PANEL, ncols, add)
                for r in range(m4, m1):
                    _tile1(A, r, Wp, p, k0, k1, C, p * PANEL, ncols, add)


def no_bias(dtype):
    """The `bias` of dot_rows that adds none: an empty array of the dtype
    (a bias is always an array, so both uses share one compiled function)."""
    return _NO_BIAS[np.dtype(dtype)]


_NO_BIAS = {np.dtype(t): np.empty(0, t) for t in (np.float32, np.float64)}


@njit(**_JIT)
def dot_rows(lo, hi, A, Wp, C, accumulate, bias):
    """C[lo:hi] (+)= A[lo:hi] @ W: the whole-sequence products, called from
    Python on row ranges (kernels/threads.py).

    bias (N,), unless empty: C[lo:hi] = bias + A[lo:hi] @ W instead, each
    row block of MC rows first filled with the bias and then accumulated
    into while it is still in cache: the bits of filling C with the bias
    and then accumulating, without a pass over C before the product. In one
    k block (K <= KC) the tile adds its sum to the bias, fadd(sum, bias),
    the bits of adding the bias in a pass after the product too (fadd
    commutes), without that pass (on a 5 MB folded table, on one thread, a
    third of the fold's time)."""
    has_bias = bias.shape[0] > 0
    if has_bias and (accumulate or bias.shape[0] != C.shape[1]):
        raise ValueError("gemm.dot_rows: a bias (one number per column of C) replaces accumulate")
    block = MC if has_bias else max(hi - lo, 1)   # _rows blocks rows by MC from lo too: same tiles
    for m0 in range(lo, hi, block):
        m1 = m0 + block if m0 + block < hi else hi
        if has_bias:
            for r in range(m0, m1):
                for j in range(bias.shape[0]):
                    C[r, j] = bias[j]
        _rows(m0, m1, A, Wp, C, accumulate or has_bias)


_ROWS = {}                     # (A's dtype, numba types of Wp, C, bias) -> dot_rows compiled for them


def rows_kernel(A, Wp, C, bias):
    """dot_rows compiled for A of any layout (numba's 'A'), to be called as
    dot_rows would be: (lo, hi, A, Wp, C, accumulate, bias).

    numba compiles a function once per argument type, and an array's type
    carries its layout: A = X (C order: x W_x, the table fold), A = X.T (F
    order: the weight gradients X^T dZ) and any strided view would be three
    compiles of the same product (about 0.35 CPU s each, two of them in
    every first fit and predict). The tiles read A's strides at run time
    whatever the layout, so the one compiled for 'A' is the same machine
    code as each of them (the same assembly, names aside) and gives the
    same bits. Its entry point takes any layout: a compiled function's
    Python wrapper checks only an array's item size."""
    # numba's fingerprint of an array (dtype, dimensions, layout, writable)
    # as the key: 0.2 us a call, against 14 for numba.typeof of three arrays
    # (a beam-search step's product takes 70 us)
    key = (A.dtype, _fingerprint(Wp), _fingerprint(C), _fingerprint(bias))
    kernel = _ROWS.get(key)
    if kernel is None:
        any_layout = types.Array(typeof(A).dtype, 2, "A")
        kernel = _ROWS[key] = dot_rows.compile((types.intp, types.intp, any_layout, typeof(Wp), typeof(C),
                                                types.boolean, typeof(bias)))
    return kernel


@njit(**_JIT)
def dot(A, Wp, C, accumulate):
    """C = A @ W, or C += A @ W when accumulate, for all rows of A (Wp =
    pack(W)): the per-step products of the loops.

    One compiled function serves both modes when `accumulate` is a value
    (q > 0, say). A literal True or False passed from compiled code makes
    numba compile a specialisation of its own (Literal[bool](False)): the
    LSTM's steps pass expressions, so its forward, backward and inference
    share one compiled product (two products were 0.37 CPU s of a cold
    start's 9.5). The tiles are the same either way: _rows already decides
    per k block, at run time, whether it adds to C (accumulate or k0 > 0)."""
    _rows(0, A.shape[0], A, Wp, C, accumulate)
