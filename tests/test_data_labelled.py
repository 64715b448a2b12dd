"""Labelled-text loaders and the CSV reader: layouts and located errors."""
import numpy as np
import pytest

from lstmkit.data.errors import DataError
from lstmkit.data.labelled_text import check_classes, load_labelled, select_classes
from lstmkit.data.npz_ids import read_npz_arrays
from lstmkit.data.tables import parse_floats, read_csv_columns


def test_csv_quoted_commas_and_crlf(tmp_path):
    (tmp_path / "d.csv").write_bytes(b'sentiment,text\r\npositive,"good, really"\r\nnegative,bad\r\n')
    data = load_labelled(tmp_path / "d.csv", text_col="text", label_col="sentiment")
    assert data.texts == ["good, really", "bad"] and data.labels == ["positive", "negative"]


def test_select_and_check_classes(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\na,pos\nb,neg\nc,neutral\n")
    data = select_classes(load_labelled(tmp_path / "d.csv"), ["pos", "neg"])
    assert data.labels == ["pos", "neg"] and check_classes(data) == ["neg", "pos"]
    with pytest.raises(DataError, match="no examples of class"):
        select_classes(data, ["happy"])
    with pytest.raises(DataError, match="one class"):
        check_classes(select_classes(data, ["pos"]))


def test_folder_skips_unsup(tmp_path):
    for c in ("pos", "neg", "unsup"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "1.txt").write_text(f"text {c}")
    data = load_labelled(tmp_path)
    assert sorted(data.labels) == ["neg", "pos"]


def test_npz_plain_arrays_and_object_arrays(tmp_path):
    np.savez(tmp_path / "plain.npz", x_train=np.ones((3, 4), np.int64), y_train=np.array([0, 1, 0]))
    data = load_labelled(tmp_path / "plain.npz")
    assert data.ids == [[1, 1, 1, 1]] * 3 and data.labels == ["0", "1", "0"]
    x = np.empty(2, dtype=object)
    x[:] = [[1, 2], [1, 3, 4]]
    np.savez(tmp_path / "obj.npz", x_test=x, y_test=np.array([1, 0]))
    assert load_labelled(tmp_path / "obj.npz", split="test").ids == [[1, 2], [1, 3, 4]]
    with pytest.raises(DataError, match="x_train"):
        load_labelled(tmp_path / "obj.npz", split="train")


def test_npz_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))
    x = np.empty(1, dtype=object)
    x[0] = Evil()
    np.savez(tmp_path / "evil.npz", x_train=x)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        read_npz_arrays(tmp_path / "evil.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_npz_arrays(tmp_path / "junk.npz")


def test_parse_floats_names_the_line(tmp_path):
    (tmp_path / "s.csv").write_text("a,b\n1,2\n\n3,x\n")
    cols, lines = read_csv_columns(tmp_path / "s.csv", ["a", "b"])
    assert lines == [2, 4]                         # blank line skipped, line numbers kept
    assert parse_floats("s.csv", "a", cols["a"], lines) == [1.0, 3.0]
    with pytest.raises(DataError, match=r"line 4: column 'b': expected a number, got 'x'"):
        parse_floats("s.csv", "b", cols["b"], lines)
