"""Compile ahead: a helper process compiles the kernels a first call will
need next, while this process compiles the one it needs now.

A new user's first `fit` compiles a training forward, then a backward, the
weight-gradient products, an optimizer update, and at `predict` an inference
loop: several seconds of numba, one after the other, on one core. The second
core has nothing to do. So the first time a kernel of a (cell, dtype) is
needed and is not in the kernel cache, this process starts one helper
(`main(CELL DTYPE VARIANT)` below, in a new Python), which compiles the
kernels of skeleton.example_kernels for that cell and dtype: every kernel it
compiles lands in the shared cache (kernels/cache.py), where this process
then loads it instead of compiling it.

On the very first run of an lstmkit (no kernel cache folder yet: every kernel
will be compiled), the helper is started earlier, at `import
lstmkit.kernels`, without its work (`prestart`): its half second of Python
start-up and imports then runs beside this process's own import, and it is
given its work at the first compile.

So that the two never compile the same kernel, a kernel is claimed before it
is compiled: a file `<key>.claim` made with O_EXCL in the cache folder (holding
the claimer's process id), then `<key>.done` once it is in the cache. A
process that needs a kernel another one has claimed waits for its `.done` --
unless the claimer has died, then it compiles the kernel itself. The compiled
code is the same whichever process compiles it: results do not change.

lk.config.compile_ahead = False turns the helper off (the claims stay: two
processes of the user's own never compile the same kernel twice either).
"""
import atexit
import os
import subprocess
import sys
import time

from .. import settings

POLL = 0.02                    # seconds between looks at a claimed kernel
PATIENCE = 120.0               # seconds to wait for another process's compile before doing it here

AHEAD = 6                      # of example_kernels' list, the helper's share: all of it (inference over both table kinds)
STEAL = 5                      # ... and what this process may compile while it waits (not inference over projections)

WAIT = 60.0                    # seconds a prestarted helper waits for its work
HELPER_ENV = "LSTMKIT_AHEAD_HELPER"   # set in a helper's environment: it starts no helper itself

_ready = set()                 # keys this process has run (compiled or loaded)
_helpers = {}                  # (cell, dtype) -> Popen
_plan = None                   # what this process compiles while it waits: an iterator of (key, compile)
_waiting = None                # the helper prestart() started, until it is given its work (False: none)
_retired = []                  # prestarted helpers let go without work: stopped and reaped at exit


def _folder():
    from .cache import cache_dir
    path = os.path.join(cache_dir(), "claims")
    os.makedirs(path, exist_ok=True)
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _claimer(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def run(key, call, helper=None, wait=True):
    """call() -- the first run of a compiled kernel, identified by `key` --
    after making sure no other process is compiling the same kernel: claim
    it, or wait for the claimer to finish (wait=False: skip it instead, and
    return None). helper: (cell, dtype) whose
    compile-ahead helper to start if this kernel has to be compiled, with
    the variant the caller needs (cell, dtype, argument class name)."""
    if key in _ready:
        return call()
    try:
        folder = _folder()
    except OSError:                                            # no cache folder: just compile
        _ready.add(key)
        return call()
    done, claim = os.path.join(folder, key + ".done"), os.path.join(folder, key + ".claim")
    if not os.path.exists(done):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            mine = True
        except FileExistsError:
            mine = False
        _log(key, "compile" if mine else "claimed elsewhere")
        if mine:
            if helper is not None:
                start_helper(*helper)
            try:
                result = call()                                # compiles, saves to the cache
            except BaseException:
                _remove(claim)
                raise
            _touch(done)
            _log(key, "compiled")
            _ready.add(key)
            return result
        if not wait:
            return None
        deadline = time.monotonic() + PATIENCE
        while not os.path.exists(done):
            owner = _claimer(claim)
            if (owner and owner != os.getpid() and not _alive(owner)) or time.monotonic() > deadline:
                _remove(claim)                                 # a dead or stuck claimer: compile here
                break
            if not _steal():
                time.sleep(POLL)
        _log(key, "waited")
    result = call()                                            # loads from the cache (or compiles)
    _touch(done)
    _ready.add(key)
    return result


def _steal():
    """While waiting for another process's kernel, compile the next unclaimed
    one of the helper's list (the first STEAL entries, the ones a first fit
    and predict need): the two processes share the work. False when there
    is none left."""
    global _plan
    if _plan is None:
        return False
    item = next(_plan, None)
    if item is None:
        _plan = None
        return False
    run(*item, wait=False)
    return True


def _log(key, what):
    """One line per decision to $LSTMKIT_AHEAD_LOG, if set (the cold-start
    benchmark records who compiled what)."""
    path = os.environ.get("LSTMKIT_AHEAD_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{time.time():.3f} {os.getpid()} {key} {what}\n")


def _touch(path):
    try:
        with open(path, "a"):
            pass
    except OSError:
        pass


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _spawn(args, stdin):
    """The helper process: main(ARGS) of this module in a new Python, in a
    session of its own (a Ctrl-C in the terminal is the caller's), with the
    lstmkit it belongs to first on its path; None if it cannot start."""
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p]), **{HELPER_ENV: "1"})
    try:
        # -c, not -m: with -m this module would run a second copy of itself
        # beside the one `import lstmkit.kernels` has imported
        return subprocess.Popen([sys.executable, "-c", "from lstmkit.kernels import ahead; ahead.main()",
                                 *args], env=env,
                                stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError:
        return None


def prestart():
    """Called by `import lstmkit.kernels`. When this lstmkit's kernel cache
    folder does not exist yet -- its first run after an install or upgrade,
    when every kernel a model uses will be compiled -- start the helper now,
    before its work is known: its Python start-up and import (about half a
    second) then run beside this process's own import instead of delaying
    its first compile by as much. It waits for its work on a pipe
    (start_helper sends it at the first compile); it exits at once when this
    process closes the pipe (at a first compile with lk.config.compile_ahead
    turned off) and after WAIT seconds without work, and is stopped at this
    process's exit if it never had work (_reap).
    With the cache folder there (every later run), nothing is started here."""
    global _waiting
    if os.environ.get(HELPER_ENV) or not settings.config.compile_ahead or _waiting is not None:
        return
    from .cache import cache_dir
    try:
        if os.path.exists(cache_dir()):
            return
    except OSError:
        return
    _waiting = _spawn(["--wait"], subprocess.PIPE) or False


def _reap():
    """At exit: stop the prestarted helpers that were never given work
    (they hold nothing: each is importing or waiting on its pipe), close
    their pipes and reap them, and reap the helpers given work that have
    finished. Python reports a child whose Popen object is collected before
    its exit status was read as a ResourceWarning ("still running", even
    when it has ended), and an open pipe as another. A helper still
    compiling is left alone: it stops at its next kernel once this process
    has gone."""
    global _waiting
    for proc in _helpers.values():
        if proc is not None:
            proc.poll()
    procs = list(_retired) + ([_waiting] if _waiting else [])
    _waiting = False
    _retired.clear()
    for proc in procs:
        try:
            proc.stdin.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


atexit.register(_reap)


def _take_waiting():
    """The prestarted helper if it is still waiting (else None); this process
    no longer holds it either way."""
    global _waiting
    proc, _waiting = _waiting, False
    if not proc:
        return None
    if proc.poll() is not None:                                # it has gone: only its pipe is left
        _retired.append(proc)
        return None
    return proc


def start_helper(cell, dtype, variant):
    """Start the compile-ahead helper for (cell, dtype), once per process, or
    give the prestarted one its work; variant: the class name of the
    argument structure this process needs first (TrainFused, say), whose
    kernels the helper compiles first."""
    if not settings.config.compile_ahead:
        waiting = _take_waiting()
        if waiting is not None:
            waiting.stdin.close()                              # it exits without compiling
            _retired.append(waiting)                           # reaped at exit
        return
    if (cell, dtype) in _helpers:
        return
    if any(p.poll() is None for p in _helpers.values()):       # one helper at a time
        return
    global _plan
    import itertools

    from . import KERNELS, skeleton
    _plan = itertools.islice(skeleton.example_kernels(KERNELS[cell].CELL, dtype, variant), STEAL)
    proc = _take_waiting()
    if proc is not None:
        try:
            proc.stdin.write(f"{cell} {dtype} {variant}\n".encode())
            proc.stdin.close()
        except OSError:                                        # it has just gone: start another
            _retired.append(proc)
            proc = None
    if proc is None:
        proc = _spawn([cell, dtype, variant], subprocess.DEVNULL)
    _helpers[(cell, dtype)] = proc


def helpers():
    """The helper processes started by this process (for tests and the benchmark)."""
    return {k: p for k, p in _helpers.items() if p is not None}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    settings.config.set(compile_ahead=False)                  # a helper starts no helper
    _log("-", "helper imported")
    if argv == ["--wait"]:                                    # prestarted: wait for the work
        import select
        if not select.select([sys.stdin], [], [], WAIT)[0]:
            return
        argv = sys.stdin.readline().split()
        if len(argv) != 3:                                    # the caller closed the pipe
            return
        _log("-", "helper given its work")
    cell, dtype, variant = argv
    import itertools

    from . import KERNELS, skeleton
    # what a training step runs besides the loops (Adam, the Embedding
    # gradient, the whole-sequence product), then the loops of the caller's
    # variant (the caller is compiling its forward and then its backward:
    # claimed, so skipped here), inference over a folded table and then over
    # projections; the order is explained in skeleton.example_kernels.
    # Not the other variant, the other optimizers or
    # the streaming kernels: a guess that costs CPU on a busy machine.
    parent = os.getppid()
    for key, compile_ in itertools.islice(
            skeleton.example_kernels(KERNELS[cell].CELL, dtype, variant), AHEAD):
        if os.getppid() != parent:                             # the caller has gone: stop
            return
        run(key, compile_, wait=False)


if __name__ == "__main__":
    main()
