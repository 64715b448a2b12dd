"""`lstmkit caption`: image captioning -- image features into an LSTM that writes
the caption word by word (Show and Tell; the source articles' 看图说话), with
features as the initial state or attention over places as options.

train     read a caption set, split its images (test / validation / train), compute
          features once (cached), fit with teacher forcing, then score the test images
          beside the most-frequent-caption and nearest-neighbour baselines. The run
          folder holds model.safetensors, meta.json (vocabulary, encoder, split,
          feature scaling), metrics.json, history.png, captions.tsv (test images:
          generated, baselines, references) and contact_sheet.png.
eval      the same scores for a run on its own test split, or on other data.
describe  captions for image files.

Splits are by image (all captions of an image on one side), drawn with the seed.
"""
import os
import time

import numpy as np

from ..data.errors import DataError
from ..io import write_json, write_text
from . import caption_eval as E
from . import caption_model as M
from .common import load_bundle, make_run_dir, save_bundle, to_jsonable
from .image_features import features_for, get_encoder

APP = "caption"


def parse_data(spec):
    """'tuxpaint', 'emoji', 'coco:PATH', 'flickr:PATH', 'csv:PATH' (also tuxpaint:STAMPS_DIR,
    emoji:FONT) -> (kind, path or None)."""
    from ..data.captions import READERS
    kind, sep, path = spec.partition(":")
    if kind not in READERS:
        raise DataError(f"--data {spec!r}: expected one of tuxpaint, emoji, coco:FILE, flickr:FILE, csv:FILE")
    return kind, (path or None)


def load_data(spec, images=None, lang="en"):
    from ..data.captions import read_any
    kind, path = parse_data(spec)
    return read_any(kind, path, images=images, lang=lang)


def split_images(n, test_split, val_split, seed):
    """(train, val, test) index arrays over n images."""
    if n < 3:
        raise DataError(f"{n} image(s): too few to split into training and test images")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_split)))
    n_val = int(round(n * val_split))
    if n - n_test - n_val < 1:
        raise DataError(f"{n} images leave none for training after {n_test} test and {n_val} validation images")
    return np.sort(perm[n_test + n_val:]), np.sort(perm[n_test:n_test + n_val]), np.sort(perm[:n_test])


def _rows(data, idx, vocab):
    """(image row per caption, id lists) for every caption of the chosen images."""
    rows, seqs = [], []
    for i in idx:
        for c in data.captions[i]:
            rows.append(i)
            seqs.append(vocab.encode(c))
    return np.asarray(rows, np.int64), seqs


def fit_scaling(train_feats, pca=None):
    """Standardise each feature with the training images' mean and deviation; with pca=k,
    then project on the first k principal directions of the training features and
    standardise those (the image Dense then has k inputs instead of D: fewer weights
    to fit on a few hundred images)."""
    axes = tuple(range(train_feats.ndim - 1))
    mean = train_feats.mean(axis=axes)
    std = train_feats.std(axis=axes) + 1e-6
    scaling = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    if pca:
        z = ((train_feats - mean) / std).reshape(-1, train_feats.shape[-1])          # (N, D)
        k = min(int(pca), z.shape[0], z.shape[1])
        _, _, vt = np.linalg.svd(z.astype(np.float64), full_matrices=False)
        proj = vt[:k].T                                                               # (D, k)
        scaling["proj"] = proj.astype(np.float32)
        scaling["pstd"] = ((z @ proj).std(axis=0) + 1e-6).astype(np.float32)
    return scaling


def _scale(features, scaling):
    z = (features - scaling["mean"]) / scaling["std"]
    if "proj" in scaling:
        z = (z @ scaling["proj"]) / scaling["pstd"]
    return z.astype(np.float32)


def train(data="tuxpaint", images=None, lang="en", tokens=None, encoder="hog", arch="show-tell",
          embed_dim=128, units=256, dropout=0.3, epochs=40, batch_size=32, learning_rate=0.003,
          min_count=2, max_len=20, test_split=0.15, val_split=0.1, beam=3, patience=None, seed=0, pca=128,
          out=None, samples=16, verbose=1, log=print, progress=True, cache=True, engine="auto", checkpoint=None):
    import lstmkit as lk
    t_start = time.perf_counter()
    capset = load_data(data, images, lang)
    tokens = tokens or ("char" if lang == "zh" else "word")
    log(f"data: {len(capset)} images, {sum(len(c) for c in capset.captions)} captions ({capset.source})")
    enc = get_encoder(encoder)
    feats = features_for(enc, capset.images, progress=progress and verbose > 0, cache=cache, log=log)
    if len(feats) != len(capset):
        raise DataError(f"encoder {encoder}: {len(feats)} feature rows for {len(capset)} images")
    tr, va, te = split_images(len(capset), test_split, val_split, seed)
    scaling = fit_scaling(feats[tr], pca)
    x = _scale(feats, scaling)
    vocab = M.CaptionVocab(tokens).fit([c for i in tr for c in capset.captions[i]], min_count=min_count)
    log(f"split: {len(tr)} train, {len(va)} validation, {len(te)} test images; "
        f"{len(vocab)} {tokens} tokens (seen at least {min_count}x)")
    model = M.build_model(arch, x.shape[1:], len(vocab), embed_dim=embed_dim, units=units,
                          dropout=dropout, seed=seed, engine=engine)
    model.compile(optimizer=lk.Adam(learning_rate, clipnorm=5.0), loss="sparse_categorical_crossentropy")
    rows, seqs = _rows(capset, tr, vocab)
    words, target = M.teacher_forcing(arch, seqs, max_len)
    fit_x = M.model_inputs(arch, x[rows], words)
    val = None
    if len(va):
        vrows, vseqs = _rows(capset, va, vocab)
        vwords, vtarget = M.teacher_forcing(arch, vseqs, max_len)
        val = (M.model_inputs(arch, x[vrows], vwords), vtarget)
    callbacks = []
    if patience and val is not None:
        callbacks = [lk.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    t0 = time.perf_counter()
    hist = model.fit(fit_x, target, batch_size=batch_size, epochs=epochs, validation_data=val,
                     callbacks=callbacks, verbose=verbose, seed=seed, **(checkpoint or {}))
    train_seconds = time.perf_counter() - t0
    out = make_run_dir("caption", out)
    meta = {"app": APP, "arch": arch, "encoder": encoder, "data": data, "images": images, "lang": lang,
            "vocab": vocab.to_dict(), "feature_shape": list(x.shape[1:]), "max_len": max_len,
            "beam": beam, "seed": seed, "pca": pca, "test_split": test_split, "val_split": val_split,
            "split": {"train": len(tr), "val": len(va), "test": len(te)}}
    save_bundle(model, meta, out)
    from ..io import atomic_path
    with atomic_path(os.path.join(out, "feature_scaling.npz")) as tmp:
        np.savez(tmp, **scaling)
    from .. import plotting
    plotting.history(hist.history, os.path.join(out, "history.png"), title=f"caption {arch} ({encoder})")
    metrics = _score(model, vocab, capset, x, tr, te, beam, max_len, lang, out, samples, log)
    metrics.update(data=data, encoder=encoder, arch=arch, tokens=tokens, vocab=len(vocab),
                   images={"train": len(tr), "val": len(va), "test": len(te)},
                   epochs_run=len(hist.history["loss"]), final_loss=hist.history["loss"][-1],
                   final_val_loss=hist.history.get("val_loss", [None])[-1],
                   train_seconds=round(train_seconds, 1), total_seconds=round(time.perf_counter() - t_start, 1))
    write_json(os.path.join(out, "metrics.json"), to_jsonable(metrics))
    return metrics, out


def _score(model, vocab, capset, x, tr, te, beam, max_len, lang, out, samples, log):
    """Captions for the test images, their scores beside both baselines, captions.tsv
    and the contact sheet."""
    t0 = time.perf_counter()
    ids = M.describe_ids(model, x[te], beam=beam, max_len=max_len)
    decode_seconds = time.perf_counter() - t0
    hyps = [vocab.decode(s) for s in ids]
    refs = [capset.captions[i] for i in te]
    train_caps = [capset.captions[i] for i in tr]
    frequent, count = E.most_frequent_caption(train_caps)
    nearest = E.nearest_captions(x[tr], train_caps, x[te])
    metrics = {"model": E.scores(hyps, refs, lang),
               "most_frequent": {**E.scores([frequent] * len(te), refs, lang), "caption": frequent,
                                 "count": count},
               "nearest_neighbour": E.scores(nearest, refs, lang),
               "beam": beam, "decode_seconds": round(decode_seconds, 2),
               "reference_median_words": float(np.median([len(r[0].split()) if lang != "zh" else len(r[0])
                                                          for r in refs]))}
    for name in ("model", "most_frequent", "nearest_neighbour"):
        m = metrics[name]
        obj = "" if m["object_share"] is None else f", right object {m['object_share']:.1%}"
        log(f"{name:18s} BLEU-1 {m['bleu1']:5.1f}  BLEU-2 {m['bleu2']:5.1f}  BLEU-4 {m['bleu4']:5.1f}{obj}")
    lines = ["image\tgenerated\tnearest_neighbour\treferences"]
    for i, h, nn in zip(te, hyps, nearest):
        lines.append("\t".join([capset.images[i], h, nn, " | ".join(capset.captions[i])]))
    write_text(os.path.join(out, "captions.tsv"), "\n".join(lines) + "\n")
    # the sheet: test images spread evenly over the (sorted, so grouped by folder) test split
    pick = np.unique(np.linspace(0, len(te) - 1, min(samples, len(te))).astype(int))
    contact_sheet([capset.images[te[k]] for k in pick], [hyps[k] for k in pick], [refs[k][0] for k in pick],
                  os.path.join(out, "contact_sheet.png"), lang=lang)
    metrics["examples"] = [{"image": os.path.basename(capset.images[te[k]]), "generated": hyps[k],
                            "reference": refs[k][0]} for k in pick]
    return metrics


def contact_sheet(paths, generated, references, path, lang="en", cols=4):
    """Images in a grid, each with the generated caption and the reference under it."""
    from .. import plotting
    from ..data.images import load_image
    import textwrap
    plt = plotting._plt()
    if lang == "zh":
        plotting.use_cjk_font(fetch=True, log=None)
    n = len(paths)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    width = 16 if lang == "zh" else 30
    for ax in axes.ravel():
        ax.axis("off")
    for ax, p, g, r in zip(axes.ravel(), paths, generated, references):
        ax.imshow(load_image(p, 128))
        text = (plotting.drawable("\n".join(textwrap.wrap(g or "(nothing)", width)[:2])),
                plotting.drawable("\n".join(textwrap.wrap(r, width)[:2])))
        ax.set_title(text[0], fontsize=9, color="#0b5394", y=-0.02, va="top", pad=0)
        ax.text(0.5, -0.24, text[1], transform=ax.transAxes, ha="center", va="top", fontsize=8,
                color="#555555", style="italic")
    fig.suptitle("generated (blue) and reference (grey, italic) captions of test images", fontsize=11)
    fig.subplots_adjust(hspace=0.75)
    return plotting.save(fig, path)


# ---- using a trained run ---------------------------------------------------------------------

def load_run(run):
    model, meta = load_bundle(run, app=APP)
    folder = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    scaling = os.path.join(folder, "feature_scaling.npz")
    if not os.path.isfile(scaling):
        raise DataError(f"{scaling}: missing; the run folder of `lstmkit caption train` keeps the "
                        f"feature scaling there")
    with np.load(scaling, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return model, meta, M.CaptionVocab.from_dict(meta["vocab"]), arrays


def evaluate(run, data=None, images=None, beam=None, out=None, samples=16, log=print, progress=True):
    """Scores of a run on its own test split (data=None) or on all images of other data
    (the baselines then draw on the run's training split)."""
    model, meta, vocab, scaling = load_run(run)
    beam = meta["beam"] if beam is None else beam
    own = load_data(meta["data"], meta.get("images"), meta["lang"])
    enc = get_encoder(meta["encoder"])
    feats = features_for(enc, own.images, progress=progress, log=log)
    tr, va, te = split_images(len(own), meta["test_split"], meta["val_split"], meta["seed"])
    x = _scale(feats, scaling)
    out = make_run_dir("caption-eval", out)
    if data is None:
        metrics = _score(model, vocab, own, x, tr, te, beam, meta["max_len"], meta["lang"], out, samples, log)
    else:
        other = load_data(data, images, meta["lang"])
        xo = _scale(features_for(enc, other.images, progress=progress, log=log), scaling)
        both = _Joined(own, tr, other)
        xj = np.concatenate([x[tr], xo])
        metrics = _score(model, vocab, both, xj, np.arange(len(tr)), np.arange(len(tr), len(xj)), beam,
                         meta["max_len"], meta["lang"], out, samples, log)
    metrics.update(run=os.fspath(run), data=data or meta["data"])
    write_json(os.path.join(out, "metrics.json"), to_jsonable(metrics))
    return metrics, out


class _Joined:
    """The run's training images followed by other data's images (for scoring other data)."""

    def __init__(self, own, tr, other):
        self.images = [own.images[i] for i in tr] + list(other.images)
        self.captions = [own.captions[i] for i in tr] + list(other.captions)


def describe(run, paths, beam=None, log=print):
    """[(path, caption)] for image files."""
    model, meta, vocab, scaling = load_run(run)
    if meta["encoder"].startswith("features:"):
        raise DataError(f"{run}: this model was trained on precomputed features ({meta['encoder']}); "
                        f"it cannot describe image files -- train with an image encoder (hog, onnx:PATH)")
    if not paths:
        raise DataError("describe: no image files given")
    enc = get_encoder(meta["encoder"])
    feats = enc.encode([os.fspath(p) for p in paths], progress=False)
    if feats.shape[1:] != scaling["mean"].shape and feats.shape[-1:] != scaling["mean"].shape:
        raise DataError(f"encoder {meta['encoder']} gives features {feats.shape[1:]}, the run was trained on "
                        f"{scaling['mean'].shape[-1]} values per image")
    ids = M.describe_ids(model, _scale(feats, scaling), beam=meta["beam"] if beam is None else beam,
                         max_len=meta["max_len"])
    return [(p, vocab.decode(s)) for p, s in zip(paths, ids)]


# ---- the demo's step -------------------------------------------------------------------------

def demo_step(out_dir, quick=False, seed=0, verbose=1, log=print):
    """Show and Tell on the Tux Paint stamps (HOG features) for `lstmkit demo`: the
    scores beside both baselines and a few test captions; None when the stamps cannot
    be had (no registry reachable)."""
    from .. import datasets
    try:
        datasets.fetch("tuxpaint-stamps-default", log=log)
    except datasets.DataMissing as e:
        log(f"note: {e}")
        log("skipping the captioning step (no Tux Paint stamps)")
        return None
    cpu0 = time.process_time()
    m, run = train("tuxpaint", epochs=2 if quick else 40, units=32 if quick else 256,
                   embed_dim=16 if quick else 128, patience=None if quick else 6, pca=128, seed=seed,
                   out=os.path.join(out_dir, "caption"), verbose=0, log=log, progress=verbose > 0)
    for ex in m["examples"][:6]:
        log(f"  {ex['image']:28s} {ex['generated']!r:34s} (reference {ex['reference']!r})")
    return {"model": m["model"], "most_frequent": m["most_frequent"],
            "nearest_neighbour": m["nearest_neighbour"], "cpu_seconds": round(time.process_time() - cpu0, 1),
            "run": run}


def demo_line(s):
    if s is None:
        return "captioning: skipped (no Tux Paint stamps)"
    m, f, n = s["model"], s["most_frequent"], s["nearest_neighbour"]
    return (f"captioning (Tux Paint, HOG): BLEU-1 {m['bleu1']:.1f} / BLEU-2 {m['bleu2']:.1f} / right object "
            f"{m['object_share']:.0%}; most frequent caption {f['bleu1']:.1f} / {f['bleu2']:.1f} / "
            f"{f['object_share']:.0%}; nearest neighbour {n['bleu1']:.1f} / {n['bleu2']:.1f} / {n['object_share']:.0%}")
