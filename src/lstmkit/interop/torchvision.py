"""The torchvision image encoder for captioning (`torchvision:NAME`), only when it
can run without a download: torchvision must import, and NAME's default weights
must already be in torch's hub cache (TORCH_HOME/hub/checkpoints). Otherwise it
refuses in one line and says what works instead (an ONNX export of the model).

Note: the torchvision wheel on PyPI does not import beside this project's torch
2.13.0 ("operator torchvision::nms does not exist"), so on such a machine this
encoder always refuses; the refusal is what the tests exercise.

What it returns: the last convolutional map as places, (N, H W, C) -- for a
ResNet the 7x7x2048 (or 512) grid before pooling; for VGG the 7x7x512 grid
after the last pooling layer.
"""
import os

import numpy as np

from ..data.errors import DataError
from ..data.images import load_image

ADVICE = ("export the model to ONNX where torchvision works and use onnx:PATH, "
          "or pass precomputed features:FILE.npy")


def _import_torchvision():
    try:
        import torchvision
    except Exception as e:                 # ImportError, or RuntimeError from its operators
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"torchvision encoder: torchvision cannot be imported here ({first}); "
                        f"{ADVICE}") from None
    return torchvision


class TorchvisionEncoder:
    def __init__(self, name):
        tv = _import_torchvision()
        import torch
        try:
            weights = tv.models.get_model_weights(name).DEFAULT
        except (ValueError, KeyError, AttributeError):
            raise DataError(f"torchvision encoder: no model named {name!r} in torchvision "
                            f"{tv.__version__}") from None
        file = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
        if not os.path.isfile(file):
            raise DataError(f"torchvision encoder: the weights of {name!r} are not on this machine "
                            f"({file}) and lstmkit never downloads them; {ADVICE}")
        model = tv.models.get_model(name)
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
        model.eval()
        self.name, self.weights, self.sha = name, file, os.path.getsize(file)
        children = list(model.children())
        if hasattr(model, "features"):                       # VGG, AlexNet, MobileNet ...
            self.body = model.features
        else:                                                # ResNet-like: drop pooling and head
            self.body = torch.nn.Sequential(*children[:-2])
        self.torch = torch
        self.size = 224

    def key(self):
        return {"encoder": "torchvision", "name": self.name, "weights_size": self.sha, "size": self.size}

    def encode(self, paths, progress=True):
        from tqdm import tqdm
        from ..apps.image_features import IMAGENET_MEAN, IMAGENET_STD, as_places
        mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
        out = []
        for k in tqdm(range(0, len(paths), 16), desc="features (torchvision)", disable=not progress, leave=False):
            x = np.stack([load_image(p, self.size) for p in paths[k:k + 16]]).transpose(0, 3, 1, 2)
            with self.torch.no_grad():
                y = self.body(self.torch.from_numpy((x - mean) / std)).numpy()
            out.append(as_places(y, f"torchvision {self.name}"))
        return np.concatenate(out).astype(np.float32)
