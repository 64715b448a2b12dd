"""Where the compiled kernels are kept, and when a kept one is stale.

numba's disk cache (cache=True) keys each function on its own source file.
The kernels compile code from other files into themselves (skeleton.py's
loops call each cell's gate math, every loop calls gemm.py and
activations.py), so an edit to one of those left old machine code in use
until someone deleted __pycache__ -- in CI and for users after an upgrade
too. Here every kernel of this package shares one source stamp, a hash of
all of kernels/*.py: any edit invalidates every kernel, and nothing stale
can load.

Where: $LSTMKIT_CACHE_DIR if set; else numba's own override
$NUMBA_CACHE_DIR (in a subfolder); else the user cache folder,
$XDG_CACHE_HOME or ~/.cache, in lstmkit/kernels/<version>-<hash of the
sources>. The folder is named after the sources, not after where lstmkit is
installed, so reinstalling the same lstmkit finds its kernels compiled, and
two installed versions do not overwrite each other's. The 8 most recently
used folders are kept, older ones deleted. If no folder is writable, numba's
default (__pycache__ beside the source) takes over.

Two processes may compile kernels at once (kernels/ahead.py's helper, two
scripts, pytest and the commands it starts). numba's cache is not safe for
that when both save versions of the same function: each picks the first
free data-file number under the same index, and one's code can end up filed
under the other's signature -- a GRU's step loaded for a simple RNN. So every
save into this folder holds an exclusive lock (flock on <index>.lock) from
reading the index to writing the data.

numba has no public hook for this; `install()` puts the locator first in
numba's list of locators (numba.core.caching.CacheImpl._locator_classes),
before any kernel module is imported. A numba without that list keeps its
default (tests/test_kernel_cache.py checks that ours is in use).
"""
import hashlib
import os
import shutil
import tempfile

from .. import __version__

HERE = os.path.dirname(os.path.abspath(__file__))
KEEP = 8                       # cache folders of other source versions kept


def _sources(folder=HERE):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".py"))


def _compute_stamp(folder=HERE):
    """A hash of every .py file of the kernels folder, names and contents."""
    h = hashlib.sha256()
    for path in _sources(folder):
        with open(path, "rb") as f:
            h.update(os.path.basename(path).encode() + b"\0" + f.read() + b"\0")
    return h.digest()


SOURCE_STAMP = _compute_stamp()


def cache_dir():
    """The folder this lstmkit's kernels are cached in."""
    tag = f"{__version__}-{SOURCE_STAMP.hex()[:16]}"
    if os.environ.get("LSTMKIT_CACHE_DIR"):
        return os.path.join(os.environ["LSTMKIT_CACHE_DIR"], tag)
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.path.join(os.environ["NUMBA_CACHE_DIR"], "lstmkit-kernels", tag)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lstmkit", "kernels", tag)


_checked = {}


def _usable(path):
    """Create the folder and check that it is writable (once per process);
    on first use also delete old siblings beyond KEEP."""
    ok = _checked.get(path)
    if ok is None:
        try:
            os.makedirs(path, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
            os.utime(path)                                    # mark as recently used
            _prune(os.path.dirname(path), keep=os.path.basename(path))
            ok = True
        except OSError:
            ok = False
        _checked[path] = ok
    return ok


def _prune(parent, keep):
    try:
        others = [os.path.join(parent, d) for d in os.listdir(parent) if d != keep]
        others = [d for d in others if os.path.isdir(d)]
        others.sort(key=os.path.getmtime, reverse=True)
        for old in others[KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


def clear():
    """Delete this lstmkit's compiled kernels (they are compiled again on use)."""
    shutil.rmtree(cache_dir(), ignore_errors=True)
    _checked.clear()


def install():
    """Put the locator below first in numba's list, and lock saves into the
    kernel cache (idempotent)."""
    try:
        from numba.core import caching
        impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")
        classes = impl._locator_classes
        locator = _make_locator(caching)
        files = caching.IndexDataCacheFile
    except (ImportError, AttributeError):                     # another numba: keep its default
        return False
    if not any(getattr(c, "__name__", "") == locator.__name__ for c in classes):
        classes.insert(0, locator)
    if not getattr(files.save, "lstmkit_locked", False):
        files.save = _locked(files.save)
    return True


def _locked(save):
    """IndexDataCacheFile.save under an exclusive lock, for our cache folder."""
    import fcntl

    def locked_save(self, key, data):
        if os.path.abspath(self._cache_path) != os.path.abspath(cache_dir()):
            return save(self, key, data)                      # not ours: numba as it is
        with open(self._index_path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return save(self, key, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    locked_save.lstmkit_locked = True
    locked_save.__wrapped__ = save
    return locked_save


def _make_locator(caching):
    class KernelCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """numba cache locator for lstmkit's kernel files (see kernels/cache.py)."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = cache_dir()

        def get_cache_path(self):
            return self._cache_path

        def ensure_cache_path(self):
            if not _usable(self._cache_path):
                raise OSError(f"cannot write to {self._cache_path}")

        def get_source_stamp(self):
            return SOURCE_STAMP

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != HERE:
                return None                                   # not ours: numba's own locators
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError:
                return None
            return self
    return KernelCacheLocator
