"""The Linux corpus: the wanted C files read once from a kernel tarball
(a tiny one made here in the same layout), the split by file."""
import io
import os
import tarfile

import pytest

from lstmkit.apps.text_corpora import load
from lstmkit.data.errors import DataError
from lstmkit.data.linux_source import extract_subset, read_sources, source_files, split_files

C = "static int add(int a, int b)\n{\n\treturn a + b;\n}\n"


def make_tarball(path):
    files = {"kernel/fork.c": C, "kernel/sched/core.c": C.replace("add", "sub"), "mm/slab.c": C,
             "fs/ext4/inode.c": C, "fs/ext4/ext4.h": "#define X 1\n", "fs/btrfs/ctree.c": C,
             "Makefile": "all:\n", "kernel/Kconfig": "config X\n"}
    with tarfile.open(path, "w:xz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"linux-source-6.1/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extracts_only_the_wanted_files(tmp_path):
    dest = extract_subset(make_tarball(tmp_path / "linux.tar.xz"), str(tmp_path / "subset"))
    assert source_files(dest) == ["fs/ext4/inode.c", "kernel/fork.c", "kernel/sched/core.c", "mm/slab.c"]
    assert not os.path.exists(f"{dest}.tmp")
    text = read_sources(dest, ["kernel/fork.c"])
    assert text.startswith("/* kernel/fork.c */\nstatic int add") and text.endswith("}\n")


def test_bad_tarball_is_one_clear_error(tmp_path):
    (tmp_path / "bad.tar.xz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="cannot read the kernel tarball"):
        extract_subset(tmp_path / "bad.tar.xz", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_split_by_file_and_corpus(tmp_path):
    folder = tmp_path / "src"
    for k in range(20):
        (folder / "kernel").mkdir(parents=True, exist_ok=True)
        (folder / "kernel" / f"f{k:02d}.c").write_text(C.replace("add", f"add{k}"), encoding="utf-8")
    files = source_files(folder)
    tr, va, te = split_files(files, 0.1, 0.1, seed=0)
    assert len(va) == len(te) == 2 and not (set(tr) & set(va)) and not (set(va) & set(te))
    assert sorted(tr + va + te) == files
    c = load(corpus="linux", corpus_dir=str(folder), val_fraction=0.1, test_fraction=0.1, log=lambda s: None)
    assert c.name == "linux" and all(f"/* {f} */" in c.val for f in c.info["val_files"])
    assert not any(f"/* {f} */" in c.train for f in c.info["val_files"] + c.info["test_files"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .c files below it"):
        source_files(tmp_path / "empty")
