"""Image encoders for captioning, chosen by a spec string:

    hog                 HOG (scikit-image) + a colour histogram + a 4x4 colour layout
                        of the image fitted into a white 64x64 square: needs no weights
    onnx:PATH[#NODE]    any image model in ONNX run by onnxruntime; the output of the
                        tensor or node NODE (default: the graph's first output)
    torchvision:NAME    a torchvision model, only when torchvision imports and NAME's
                        weights are already in torch's hub cache (interop/torchvision.py)
    features:FILE.npy   precomputed features, (N, D) or (N, L, D), rows in image order

What comes out is (N, D) (one vector per image) or (N, L, D) (L places of an image,
e.g. the 7x7 grid of a CNN's last convolution as L = 49): an encoder output of shape
(N, C, H, W) becomes (N, H W, C). Show and Tell takes the mean over L when it is
given places; attention reads them.

Features are computed once per (encoder, image set) and kept in the data cache's
derived/caption-features/ folder under a key made of the encoder (and its model
file's SHA-256), the image size and every image's path, size and modification time.
"""
import hashlib
import json
import os

import numpy as np

from ..data.errors import DataError
from ..data.images import load_image

HOG_SIZE = 64
FEATURE_VERSION = 1               # bump when an encoder's output changes


def file_sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ---- hog ----------------------------------------------------------------------------------

class HogEncoder:
    """HOG of the grey image (9 orientations, 8x8-pixel cells, 2x2-cell blocks, L2-Hys),
    an RGB histogram (4 bins per channel, 64 joint bins, summing to 1) and the mean
    colour of each cell of a 4x4 grid (48 values). For 64x64: 1764 + 64 + 48 = 1876."""

    name = "hog"

    def __init__(self, size=HOG_SIZE):
        try:
            from skimage.feature import hog
        except ImportError:
            raise DataError("the hog encoder needs scikit-image: pip install 'lstmkit[caption]'") from None
        self._hog = hog
        self.size = int(size)

    def key(self):
        return {"encoder": "hog", "size": self.size}

    def encode_one(self, path):
        rgb = load_image(path, self.size)                                   # (S, S, 3)
        grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)            # (S, S)
        h = self._hog(grey, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2),
                      block_norm="L2-Hys", feature_vector=True)
        q = np.minimum((rgb * 4).astype(np.int64), 3)                      # (S, S, 3) bins 0..3
        joint = (q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).ravel()
        hist = np.bincount(joint, minlength=64).astype(np.float32) / joint.size
        g = self.size // 4
        layout = rgb[:g * 4, :g * 4].reshape(4, g, 4, g, 3).mean(axis=(1, 3)).ravel()
        return np.concatenate([h.astype(np.float32), hist, layout.astype(np.float32)])

    def encode(self, paths, progress=True):
        return _loop(self.encode_one, paths, progress, "hog")


def _loop(fn, paths, progress, what):
    from tqdm import tqdm
    rows = []
    for p in tqdm(paths, desc=f"features ({what})", unit="img", disable=not progress, leave=False):
        rows.append(fn(p))
    return np.stack(rows).astype(np.float32)


# ---- onnx ---------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class OnnxEncoder:
    """An ONNX image model taking (N, 3, H, W) float32, normalised with ImageNet's
    mean and standard deviation (what VGG and ResNet expect; pass mean=(0,0,0),
    std=(1,1,1) for raw [0, 1] pixels). H = W from the model's input when fixed,
    else `size`. NODE names a tensor (or a node, for its first output) anywhere in
    the graph: it is added to the graph's outputs before the session is made."""

    def __init__(self, path, node=None, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, batch=16):
        try:
            import onnx
            import onnxruntime as ort
        except ImportError:
            raise DataError("the onnx encoder needs onnx and onnxruntime: pip install 'lstmkit[onnx]'") from None
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: no such ONNX file")
        try:
            model = onnx.load(self.path)
        except Exception as e:                           # onnx raises DecodeError, ValueError ...
            raise DataError(f"{self.path}: cannot read it as an ONNX model ({e})") from None
        graph = model.graph
        inits = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in inits]
        if len(inputs) != 1:
            raise DataError(f"{self.path}: expected a model with one image input, it has "
                            f"{[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) != 4 or dims[1] not in (3, None):
            raise DataError(f"{self.path}: input {self.input_name!r} has shape {dims}; expected (N, 3, H, W)")
        self.size = dims[2] if dims[2] else int(size)
        outputs = [o.name for o in graph.output]
        if node is None:
            self.output = outputs[0]
        else:
            names = {n.name: n.output[0] for n in graph.node if n.name}
            tensors = {t for n in graph.node for t in n.output}
            if node in tensors:
                self.output = node
            elif node in names:
                self.output = names[node]
            else:
                shown = sorted(tensors)[:12]
                raise DataError(f"{self.path}: no tensor or node named {node!r}; some of its tensors: {shown}")
            if self.output not in outputs:
                inferred = onnx.shape_inference.infer_shapes(model)
                info = [v for v in list(inferred.graph.value_info) + list(inferred.graph.output)
                        if v.name == self.output]
                graph.output.append(info[0] if info else onnx.helper.make_empty_tensor_value_info(self.output))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = min(2, os.cpu_count() or 1)
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise DataError(f"{self.path}: onnxruntime cannot run it ({e})") from None
        self.node = node
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.batch = int(batch)
        self.sha = file_sha256(self.path)

    def key(self):
        return {"encoder": "onnx", "sha256": self.sha, "output": self.output, "size": self.size,
                "mean": self.mean.ravel().tolist(), "std": self.std.ravel().tolist()}

    def run(self, pixels):
        """(N, S, S, 3) floats in [0, 1] -> the chosen output, places last: (N, D) or (N, L, D)."""
        x = (pixels.transpose(0, 3, 1, 2) - self.mean) / self.std              # (N, 3, S, S)
        (y,) = self.session.run([self.output], {self.input_name: x.astype(np.float32)})
        return as_places(np.asarray(y, np.float32), f"{self.path}: output {self.output!r}")

    def encode(self, paths, progress=True):
        from tqdm import tqdm
        out = []
        bar = tqdm(total=len(paths), desc="features (onnx)", unit="img", disable=not progress, leave=False)
        for k in range(0, len(paths), self.batch):
            chunk = paths[k:k + self.batch]
            out.append(self.run(np.stack([load_image(p, self.size) for p in chunk])))
            bar.update(len(chunk))
        bar.close()
        return np.concatenate(out).astype(np.float32)


def as_places(y, what):
    """(N, D) stays; (N, C, H, W) -> (N, H W, C); (N, C, 1, 1) -> (N, C); (N, L, D) stays."""
    if y.ndim == 4:
        n, c, h, w = y.shape
        y = y.reshape(n, c, h * w).transpose(0, 2, 1)
        return y[:, 0] if h * w == 1 else y
    if y.ndim in (2, 3):
        return y
    raise DataError(f"{what}: shape {y.shape}; expected (N, D), (N, L, D) or (N, C, H, W)")


# ---- features:FILE.npy --------------------------------------------------------------------

class FileFeatures:
    name = "features"

    def __init__(self, path):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: no such features file")
        try:
            self.array = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{self.path}: cannot read it as a .npy array ({e})") from None
        if self.array.ndim not in (2, 3) or not np.issubdtype(self.array.dtype, np.number):
            raise DataError(f"{self.path}: features of shape {self.array.shape} ({self.array.dtype}); "
                            f"expected numbers shaped (N, D) or (N, L, D)")
        if not np.isfinite(self.array).all():
            raise DataError(f"{self.path}: features hold NaN or infinite values")

    def key(self):
        return None                                   # nothing to cache

    def encode(self, paths, progress=True):
        if len(paths) != len(self.array):
            raise DataError(f"{self.path}: {len(self.array)} rows of features for {len(paths)} images; "
                            f"expected one row per image, in the data's image order")
        return self.array.astype(np.float32)


def get_encoder(spec, **options):
    """An encoder from its spec string (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"image encoder: expected hog, onnx:PATH, torchvision:NAME or features:FILE.npy; got {spec!r}")
    kind, _, arg = spec.partition(":")
    if kind == "hog" and not arg:
        return HogEncoder(**{k: v for k, v in options.items() if k == "size"})
    if kind == "onnx" and arg:
        path, _, node = arg.partition("#")
        return OnnxEncoder(path, node or None, **options)
    if kind == "torchvision" and arg:
        from ..interop.torchvision import TorchvisionEncoder
        return TorchvisionEncoder(arg)
    if kind == "features" and arg:
        return FileFeatures(arg)
    raise DataError(f"image encoder {spec!r}: expected hog, onnx:PATH[#NODE], torchvision:NAME or "
                    f"features:FILE.npy")


def cache_folder():
    from .. import datasets
    return os.path.join(datasets.cache_root(), "derived", "caption-features")


def features_for(encoder, paths, progress=True, cache=True, log=None):
    """(N, D) or (N, L, D) float32 for the images, from the cache when the same encoder
    saw the same files before."""
    paths = [os.path.abspath(p) for p in paths]
    key = encoder.key() if cache else None
    if key is None:
        return encoder.encode(paths, progress)
    stats = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"{p}: no such image file") from None
        stats.append([p, st.st_size, st.st_mtime_ns])
    blob = json.dumps({"v": FEATURE_VERSION, "encoder": key, "images": stats}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:24]
    file = os.path.join(cache_folder(), f"{key['encoder']}-{digest}.npy")
    if os.path.isfile(file):
        try:
            arr = np.load(file, allow_pickle=False)
            if len(arr) == len(paths):
                if log:
                    log(f"features: {arr.shape} from the cache ({file})")
                return arr
        except (ValueError, OSError):
            pass                                        # damaged: compute again
    arr = encoder.encode(paths, progress)
    from ..io import atomic_path
    with atomic_path(file) as tmp:
        np.save(tmp, arr)
    if log:
        log(f"features: {arr.shape} computed and cached ({file})")
    return arr
