"""The machine's limits, measured: the float32 fused multiply-add peak of a
core (a small kernel that does nothing else), and NumPy's BLAS sgemm rate.

FMA peak: each thread runs a loop of N independent chains of vector fused
multiply-adds on values held in registers (no memory traffic):

    FLOP/s = iterations x chains x lanes x 2 / seconds

with lanes = 16 float32 per 512-bit vector (8 with 256-bit vectors) and 2
FLOPs per multiply-add. 12 chains cover the FMA latency (4 cycles) on 2
pipes with room to spare. The loop is LLVM IR through a numba intrinsic, as
lstmkit's own product (src/lstmkit/kernels/gemm.py), so both use the same
instructions.
"""
import threading
import time

import numpy as np


def sgemm_gflops(n=2048, repeats=5):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    np.dot(a, b)                                             # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.dot(a, b)
        best = min(best, time.perf_counter() - t0)
    return {"n": n, "best_s": best, "gflops": 2.0 * n ** 3 / best / 1e9}


def work_flops(case, framework):
    """FLOPs of one call (one training step, one inference, one streaming
    step) as `framework` runs it: 2 per multiply-add of the matrix products
    it actually does; elementwise work is not counted.

    Recurrent layer l (input D_l, H units, G gates) over B x T:
      input product 2 B T D_l G H, recurrent product 2 B T H G H;
    training: backward does both again twice (dx, dW): x3 in all;
    head: Dense over the last step (A, B: 2 B H out) or every step (D: 2 B T H V), x3 in training.
    lstmkit's inference folds the embedding through the first layer's input
    kernel: with the table kept between calls it does no input product at all
    (it reads rows), and a fresh call does the fold once, 2 V E G H, instead
    of 2 B T E G H."""
    from weights import GATES
    net, B, T = case.net, case.batch, case.length
    G, H = GATES[net.cell], net.units
    if case.kind == "step":
        return 2 * B * (net.embed + H) * G * H
    folded = framework == "lstmkit" and case.kind == "infer" and net.vocab and not net.per_step
    total, D = 0, net.embed
    for layer in range(net.layers):
        if layer == 0 and folded:
            total += 2 * net.vocab * D * G * H if case.fresh else 0
        else:
            total += 2 * B * T * D * G * H
        total += 2 * B * T * H * G * H
        D = H
    total += 2 * B * (T if net.per_step else 1) * H * net.out
    return total * (3 if case.kind == "train" else 1)


_CHAINS = 12


def _fma_kernel():
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def fma_loop(typingctx, a, n):
        sig = types.float32(a, types.intp)

        def codegen(context, builder, signature, args):
            arr, n_ = args
            f32 = ir.FloatType()
            lanes = 16
            vec = ir.VectorType(f32, lanes)
            i64 = ir.IntType(64)
            ary = context.make_array(signature.args[0])(context, builder, arr)
            x = builder.load(builder.bitcast(ary.data, vec.as_pointer()))      # 16 runtime values
            x.align = 4
            y = builder.load(builder.bitcast(builder.gep(ary.data, [ir.Constant(i64, lanes)]),
                                             vec.as_pointer()))
            y.align = 4
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 "llvm.fma.v16f32")
            entry = builder.block
            loop = builder.append_basic_block("fma_loop")
            done = builder.append_basic_block("fma_done")
            builder.branch(loop)
            builder.position_at_end(loop)
            i = builder.phi(i64)
            i.add_incoming(ir.Constant(i64, 0), entry)
            accs = []
            for c in range(_CHAINS):
                phi = builder.phi(vec)
                phi.add_incoming(x, entry)
                accs.append(phi)
            new = [builder.call(fma, [acc, y, x]) for acc in accs]            # acc = acc * y + x
            i_next = builder.add(i, ir.Constant(i64, 1))
            i.add_incoming(i_next, builder.block)
            for phi, v in zip(accs, new):
                phi.add_incoming(v, builder.block)
            builder.cbranch(builder.icmp_signed("<", i_next, n_), loop, done)
            builder.position_at_end(done)
            total = new[0]
            for v in new[1:]:
                total = builder.fadd(total, v)
            return builder.extract_element(total, ir.Constant(ir.IntType(32), 0))
        return sig, codegen

    @njit(nogil=True)
    def run(a, n):
        return fma_loop(a, n)
    return run


def fma_gflops(threads=1, seconds=0.25, repeats=5):
    """The measured float32 FMA rate: best of `repeats` runs of about
    `seconds` each, on `threads` threads at once. Returns a dict with the
    formula's terms."""
    run = _fma_kernel()
    a = np.full(32, 0.999, np.float32)                          # y < 1: the chains stay finite
    run(a, 10)
    n = 1000
    while True:                                                 # size the loop to ~seconds
        t0 = time.perf_counter()
        run(a, n)
        dt = time.perf_counter() - t0
        if dt > seconds / 4:
            break
        n *= 4
    n = int(n * seconds / dt)
    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=run, args=(a, n)) for _ in range(threads - 1)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        run(a, n)
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - t0)
    flops = n * _CHAINS * 16 * 2 * threads
    return {"threads": threads, "iterations": n, "chains": _CHAINS, "lanes": 16, "seconds": best,
            "gflops": flops / best / 1e9, "gflops_per_core": flops / best / 1e9 / threads,
            "formula": "iterations x chains x lanes x 2 x threads / seconds"}
