"""Read the arrays of an .npz file without running arbitrary pickles.

Keras's imdb.npz stores x_train/x_test as object arrays of Python lists, which
NumPy saves as a pickle inside the .npy member, so np.load(allow_pickle=False)
refuses them. Plain numeric arrays are loaded that way; for object arrays we
unpickle with a loader that may only rebuild NumPy arrays, dtypes and lists
of integers -- anything else in the pickle is rejected, so a crafted file
cannot run code.
"""
import io
import pickle
import zipfile

import numpy as np

from .errors import DataError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the file")


def _read_object_member(raw, path, name):
    f = io.BytesIO(raw)
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f)
    if dtype != object:
        raise DataError(f"{path}: member {name} is not an object array")
    try:
        arr = _ArrayOnlyUnpickler(f).load()
    except Exception as e:
        raise DataError(f"{path}: member {name}: cannot read it safely ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: member {name} does not hold an array")
    for row in arr.ravel():
        if not (isinstance(row, (list, np.ndarray)) and all(isinstance(i, (int, np.integer)) for i in row)):
            raise DataError(f"{path}: member {name}: expected lists of integer ids, got {type(row).__name__}")
    return arr


def read_npz_arrays(path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    out = {}
    with zf:
        for member in zf.namelist():
            if not member.endswith(".npy"):
                continue
            key = member[:-4]
            raw = zf.read(member)
            try:
                out[key] = np.load(io.BytesIO(raw), allow_pickle=False)
            except ValueError:
                # object arrays need a pickle; read them with the restricted loader
                out[key] = _read_object_member(raw, path, member)
    if not out:
        raise DataError(f"{path}: the .npz holds no arrays")
    return out
