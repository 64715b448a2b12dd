"""Image encoders, each really run: hog, onnx (a small CNN built in PyTorch and
exported here), features:FILE.npy, and torchvision's refusal; the feature cache."""
import os
import sys
import types

import numpy as np
import pytest

from caption_fixture import shapes_set, write_csv
from lstmkit.apps import image_features as F
from lstmkit.data.errors import DataError


@pytest.fixture
def images(tmp_path):
    rows = shapes_set(str(tmp_path / "img"), copies=2)
    return [str(tmp_path / "img" / n) for n, _ in rows], rows


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMKIT_DATA", str(tmp_path / "cache"))


def test_hog_features(images):
    paths, rows = images
    enc = F.get_encoder("hog")
    x = enc.encode(paths, progress=False)
    assert x.shape == (len(paths), 1764 + 64 + 48) and x.dtype == np.float32
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, enc.encode(paths, progress=False))          # deterministic
    red_sq, red_disc, blue_sq = x[0], x[2], x[4]
    # shape lives in HOG, colour in the histogram
    assert np.abs(red_sq[:1764] - blue_sq[:1764]).sum() < np.abs(red_sq[:1764] - red_disc[:1764]).sum()
    assert np.abs(red_sq[1764:] - red_disc[1764:]).sum() < np.abs(red_sq[1764:] - blue_sq[1764:]).sum()


def test_feature_cache_computes_once(images, monkeypatch, tmp_path):
    paths, _ = images
    enc = F.get_encoder("hog")
    calls = []
    real = enc.encode
    monkeypatch.setattr(enc, "encode", lambda p, progress=True: calls.append(len(p)) or real(p, progress))
    a = F.features_for(enc, paths, progress=False)
    b = F.features_for(enc, paths, progress=False)
    assert calls == [len(paths)]
    np.testing.assert_array_equal(a, b)
    assert len(os.listdir(tmp_path / "cache" / "derived" / "caption-features")) == 1
    os.utime(paths[0], ns=(1, 1))                                  # a changed file: computed again
    F.features_for(enc, paths, progress=False)
    assert calls == [len(paths)] * 2


def test_features_file(tmp_path, images):
    paths, _ = images
    good = tmp_path / "f.npy"
    np.save(good, np.arange(len(paths) * 6, dtype=np.float32).reshape(len(paths), 3, 2))
    x = F.features_for(F.get_encoder(f"features:{good}"), paths)
    assert x.shape == (len(paths), 3, 2)
    with pytest.raises(DataError, match=r"3 rows of features for 12 images"):
        F.FileFeatures(_save(tmp_path / "short.npy", np.zeros((3, 4)))).encode(paths)
    with pytest.raises(DataError, match=r"expected numbers shaped \(N, D\) or \(N, L, D\)"):
        F.get_encoder(f"features:{_save(tmp_path / 'flat.npy', np.zeros(5))}")
    with pytest.raises(DataError, match="no such features file"):
        F.get_encoder(f"features:{tmp_path / 'none.npy'}")


def _save(path, arr):
    np.save(path, arr)
    return str(path)


def test_unknown_encoder_spec():
    with pytest.raises(DataError, match="expected hog, onnx:PATH"):
        F.get_encoder("vgg16")


def test_torchvision_refused_when_it_cannot_import(monkeypatch):
    """PyPI's torchvision does not import beside torch 2.13.0 on these machines,
    so this refusal is what a user here meets."""
    monkeypatch.setitem(sys.modules, "torchvision", None)                 # import fails
    with pytest.raises(DataError, match="torchvision cannot be imported here.*onnx:PATH"):
        F.get_encoder("torchvision:resnet18")


def test_torchvision_refused_without_local_weights(monkeypatch, tmp_path):
    """A torchvision that imports but has no weights on disk: refused, never downloaded."""
    import torch
    weights = types.SimpleNamespace(url="https://example.invalid/resnet18-f37072fd.pth")
    fake = types.ModuleType("torchvision")
    fake.__version__ = "0.0-test"
    fake.models = types.SimpleNamespace(
        get_model_weights=lambda name: types.SimpleNamespace(DEFAULT=weights),
        get_model=lambda name: pytest.fail("must not build a model without weights"))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(DataError, match=r"weights of 'resnet18' are not on this machine.*never downloads"):
        F.get_encoder("torchvision:resnet18")


def export_small_cnn(path):
    """A two-convolution CNN (random weights) exported to ONNX with torch; its second
    convolution's output is the tensor 'places' (N, 8, 4, 4), its pooled vector the output."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.c1 = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.c2 = torch.nn.Conv2d(6, 8, 3, stride=2, padding=1)

        def forward(self, x):
            places = torch.relu(self.c2(torch.relu(self.c1(x))))
            return places.mean(dim=(2, 3))

    net = Net().eval()
    torch.onnx.export(net, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17,
                      input_names=["pixels"], output_names=["pooled"],
                      dynamic_axes={"pixels": {0: "n"}, "pooled": {0: "n"}})
    return net


def test_onnx_encoder_output_and_named_node(tmp_path, images):
    import onnx
    import torch
    paths, _ = images
    file = tmp_path / "cnn.onnx"
    net = export_small_cnn(file)
    enc = F.get_encoder(f"onnx:{file}", mean=(0, 0, 0), std=(1, 1, 1))
    assert enc.size == 16
    pooled = enc.encode(paths, progress=False)
    assert pooled.shape == (len(paths), 8)
    from lstmkit.data.images import load_image
    x = torch.from_numpy(np.stack([load_image(p, 16) for p in paths]).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        np.testing.assert_allclose(pooled, net(x).numpy(), rtol=1e-4, atol=1e-5)
    relu = [n for n in onnx.load(str(file)).graph.node if n.op_type == "Relu"][-1]
    grid = F.get_encoder(f"onnx:{file}#{relu.name}", mean=(0, 0, 0), std=(1, 1, 1)).encode(paths, progress=False)
    assert grid.shape == (len(paths), 16, 8)                                  # 4x4 places of 8 channels
    np.testing.assert_allclose(grid.mean(axis=1), pooled, rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match="no tensor or node named 'nope'"):
        F.get_encoder(f"onnx:{file}#nope")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot read it as an ONNX model"):
        F.get_encoder(f"onnx:{tmp_path / 'junk.onnx'}")


def test_onnx_end_to_end(tmp_path, images, capsys):
    """Export, encode, train one epoch, describe -- through the command line."""
    import onnx
    from lstmkit.cli.main import main
    paths, rows = images
    file = tmp_path / "cnn.onnx"
    export_small_cnn(file)
    relu = [n for n in onnx.load(str(file)).graph.node if n.op_type == "Relu"][-1]
    csv = write_csv(tmp_path / "img" / "caps.csv", rows)
    for arch, spec in (("attention", f"onnx:{file}#{relu.name}"), ("show-tell", f"onnx:{file}")):
        out = tmp_path / f"run-{arch}"
        code = main(["caption", "train", "--data", f"csv:{csv}", "--encoder", spec, "--arch", arch,
                     "--epochs", "1", "--units", "16", "--embed-dim", "8", "--min-count", "1",
                     "--test-split", "0.25", "--val-split", "0", "--samples", "2", "--out", str(out), "--quiet"])
        assert code == 0
        for f in ("model.safetensors", "meta.json", "metrics.json", "history.png", "contact_sheet.png",
                  "captions.tsv", "feature_scaling.npz"):
            assert (out / f).is_file(), f
        capsys.readouterr()
        assert main(["caption", "describe", "--model", str(out), paths[0], paths[5]]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert [ln.split("\t")[0] for ln in lines] == [paths[0], paths[5]]
