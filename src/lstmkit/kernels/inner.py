"""Compile the kernels' inner functions once, inside the loops that call them.

numba compiles every function a kernel calls (a cell's step, the per-step
products) as a function of its own: typed, lowered to LLVM
IR, optimised, and turned into machine code. The caller then links that IR
into its own module, optimises the whole again and makes machine code of the
whole again. For an inner function nobody calls from Python, its own
machine code is thrown away: measured on the seeds' model (a first fit and
predict, empty cache), about 0.45 of the 9.5 CPU seconds of compiling for
the training steps, about 0.9 with the other inner functions (left out, below).

So for the cells' training steps (STEPS below; @overload implementations,
compiled in nopython mode without a CPython wrapper): their library is linked and optimised as
before but never made machine code, and only the callers' modules are made
machine code. The callers link the inner IR as optimised; before, they
linked it as numba's machine-code step had left it (that step rewrites the
module in place), so a loop's machine code is not byte for byte the old one:
its results are the same bits (tests/test_kernel_inner.py compiles with and
without, from empty caches) and its speed was measured against the old
(docs/kernels.md, "Compile time"). Leaving out the inner optimisation too
saved about 1 s more, but the inference loop ran 7-10 % slower (that was
with every inner function treated so; see STEPS).

Should anything ask an inner library for machine code after all (a pointer,
or numba's disk cache saving it), it is finished then, the usual way
(`_finish`).

numba has no public hook for this: `install()` wraps four methods of its
CPU target (CPUContext.get_executable, JITCodeLibrary.finalize,
.get_pointer_to_function, .serialize_using_object_code); a numba without them
keeps its usual behaviour (tests/test_kernel_inner.py checks that ours is in
use). LSTMKIT_INNER_LIBRARIES=0 turns it off.
"""
import os

PACKAGE = __name__.rsplit(".", 1)[0] + "."       # "lstmkit.kernels."
_FLAG = "_lstmkit_inner"                         # on a library: finished only when asked


# Which inner functions: the cells' training steps only. The inference step,
# the per-step products and the gather were inner too at first: every loop's
# results stayed the same bits and the training loops' speed too, but the
# inference loop ran 5-12 % slower (A's shapes, one thread, 4 rounds
# alternating with main) -- its machine code is not the old one. Left out,
# the inference loop is compiled exactly as before (tests/test_kernel_inner.py).
STEPS = ("_forward_step.", "_backward_step.")


def _is_inner(library, fndesc):
    """One of STEPS of this package, compiled without a CPython wrapper: only
    other compiled code can call it."""
    if not (fndesc.modname or "").startswith(PACKAGE) or not fndesc.qualname.startswith(STEPS):
        return False
    try:
        library._final_module.get_function(fndesc.llvm_cpython_wrapper_name)
    except NameError:
        return True
    return False


def _finish(library):
    """Make an inner library an ordinary finished one: its machine code, its environment."""
    pending = getattr(library, _FLAG, None)
    if pending is None:
        return
    setattr(library, _FLAG, None)
    library._finalize_final_module()
    env_name, env = pending
    library.codegen.set_env(env_name, env)


def install():
    """Wrap numba's CPU target as the module docstring says (idempotent).
    Returns whether it is in use."""
    if os.environ.get("LSTMKIT_INNER_LIBRARIES", "1") == "0":
        return False
    try:
        from numba import _dynfunc
        from numba.core import codegen, cpu
        from numba.core.compiler_lock import require_global_compiler_lock
        Library, Context = codegen.JITCodeLibrary, cpu.CPUContext
        originals = (Context.get_executable, Library.finalize, Library.get_pointer_to_function,
                     Library.serialize_using_object_code)
    except (ImportError, AttributeError):
        return False
    if getattr(Context.get_executable, "lstmkit_inner", False):
        return True
    get_executable, finalize, get_pointer, serialize = originals

    def get_executable_(self, library, fndesc, env):
        if not isinstance(library, Library) or library._finalized or not _is_inner(library, fndesc):
            return get_executable(self, library, fndesc, env)
        # what numba returns for a function without a wrapper (a null entry
        # point), without making its machine code
        setattr(library, _FLAG, (self.get_env_name(fndesc), env))
        return _dynfunc.make_function(fndesc.lookup_module(), fndesc.qualname.split(".")[-1],
                                      f"compiled wrapper for {fndesc.qualname!r}", 0, env,
                                      (library,))

    def finalize_(self):
        if getattr(self, _FLAG, None) is None:
            return finalize(self)
        # numba's finalize without its last two steps, the module passes
        # and the machine code: link the libraries this one calls; the
        # function passes have run (add_ir_module)
        require_global_compiler_lock()
        self._raise_if_finalized()
        seen = set()
        for lib in self._linking_libraries:
            if lib not in seen:
                self._reload_init.update(lib._reload_init)
                seen.add(lib)
                self._final_module.link_in(lib._get_module_for_linking(), preserve=True)
        # Not optimised as a module either: each caller links this IR and
        # optimises the linked whole (cheap pass, reference-count pruning,
        # full pass), so the step's IR gets that treatment there. Done here
        # as well, it cost 0.3-0.4 CPU s of a cold start (the forward and
        # backward loops, which are on the caller's path); the loops' results
        # are the same bits and their speed the same (docs/kernels.md).
        self._final_module.verify()
        self._finalized = True

    def get_pointer_(self, name):
        self._ensure_finalized()
        _finish(self)
        return get_pointer(self, name)

    def serialize_(self):
        self._ensure_finalized()
        _finish(self)
        return serialize(self)

    for fn in (get_executable_, finalize_, get_pointer_, serialize_):
        fn.lstmkit_inner = True
    Context.get_executable = get_executable_
    Library.finalize = finalize_
    Library.get_pointer_to_function = get_pointer_
    Library.serialize_using_object_code = serialize_
    return True


def in_use():
    try:
        from numba.core import cpu
    except ImportError:
        return False
    return getattr(cpu.CPUContext.get_executable, "lstmkit_inner", False)
