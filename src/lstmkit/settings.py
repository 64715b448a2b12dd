"""The fast engine's settings, in one place: `lk.config` (lstmkit.settings.config).

    import lstmkit as lk
    lk.config.threads                        # read a setting
    lk.config.set(threads=1)                 # change the process-wide default
    with lk.config(threads=1, flush_denormals=False):
        model.fit(x, y)                      # these values inside the block, in this thread only

| setting | default | what it does | changes results? |
|---|---|---|---|
| `threads` | numba's thread count (the cores) | threads per engine call: batch rows split into chunks, whole-sequence products split by rows | no (tested bit for bit from 1 to 4 threads) |
| `flush_denormals` | True | flush-to-zero inside the compiled loops (x86 MXCSR FTZ/DAZ, restored on return) | only numbers below 1.2e-38 (float32) / 2.2e-308 (float64) |
| `reuse_buffers` | True | big arrays (caches, outputs) come from a pool of leased buffers | no |
| `pool_max_bytes` | 1 GiB | free pooled memory kept for reuse | no |
| `compile_ahead` | True | at a first use, a helper process compiles the kernels needed next (kernels/ahead.py; on the first run of an lstmkit, with no kernel cache yet, it is started at import and given its work at the first compile) | no: the same machine code either way |

Why `threads` does not change results: rows of a batch never interact inside
a time loop, every product computes each output row with the same
instructions whatever rows share its thread (kernels/gemm.py), and the
weight gradients are summed over a fixed number of row blocks that does not
depend on the thread count (kernels/threads.py).

What the library does not touch: BLAS's own thread count. No library call
changes a process-wide setting; the fast engine does its products itself
(kernels/gemm.py) and never starts BLAS threads. The `lstmkit` command line
limits BLAS to one thread for its whole run (`--blas-threads`), as a
program may.

`with lk.config(...)` keeps its values in a context variable: other threads
go on with the process-wide defaults, and a thread started inside the block
does too. `lk.config.set` changes the defaults for every thread.
"""
import contextlib
import contextvars

_SETTINGS = ("threads", "flush_denormals", "reuse_buffers", "pool_max_bytes", "compile_ahead")


def _check(name, value):
    if name == "threads":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"lk.config: threads must be a positive integer; got {value!r}")
        return value
    if name == "pool_max_bytes":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"lk.config: pool_max_bytes must be an integer >= 0; got {value!r}")
        return value
    if name in ("flush_denormals", "reuse_buffers", "compile_ahead"):
        if not isinstance(value, bool):
            raise ValueError(f"lk.config: {name} must be True or False; got {value!r}")
        return value
    raise ValueError(f"lk.config has no setting {name!r}; the settings are {', '.join(_SETTINGS)}")


def _default_threads():
    import numba
    return int(numba.config.NUMBA_NUM_THREADS)


class Config:
    """Settings of the fast engine; see the module docstring. One instance, `lk.config`."""

    def __init__(self):
        self._defaults = {"threads": None, "flush_denormals": True, "reuse_buffers": True,
                          "pool_max_bytes": 1 << 30, "compile_ahead": True}
        self._local = contextvars.ContextVar("lstmkit_config", default={})

    def __getattr__(self, name):
        if name.startswith("_") or name not in _SETTINGS:
            raise AttributeError(f"lk.config has no setting {name!r}; the settings are "
                                 f"{', '.join(_SETTINGS)}")
        local = self._local.get()
        if name in local:
            return local[name]
        value = self._defaults[name]
        if value is None:                                   # threads: read numba's once, lazily
            value = self._defaults[name] = _default_threads()
        return value

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.set(**{name: value})

    def set(self, **settings):
        """Change the process-wide defaults (every thread, from now on)."""
        checked = {k: _check(k, v) for k, v in settings.items()}
        self._defaults.update(checked)

    @contextlib.contextmanager
    def __call__(self, **settings):
        """Override settings inside a with block, in the calling thread only."""
        checked = {k: _check(k, v) for k, v in settings.items()}
        token = self._local.set({**self._local.get(), **checked})
        try:
            yield self
        finally:
            self._local.reset(token)

    def as_dict(self):
        return {k: getattr(self, k) for k in _SETTINGS}

    def __repr__(self):
        return "lk.config(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


config = Config()
