"""Small generated image sets for the captioning tests: coloured shapes on white
(PNG files written with Pillow), captioned by what they show."""
import json
import os

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220)}
SHAPES = ("square", "disc")


def draw(path, colour, shape, size=48, seed=0, rgba=False):
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    mode, bg = ("RGBA", (0, 0, 0, 0)) if rgba else ("RGB", (255, 255, 255))
    im = Image.new(mode, (size, size), bg)
    d = ImageDraw.Draw(im)
    m = int(rng.integers(4, 10))
    box = (m, m, size - m, size - m)
    fill = COLOURS[colour] + ((255,) if rgba else ())
    (d.rectangle if shape == "square" else d.ellipse)(box, fill=fill)
    im.save(path)
    return path


def shapes_set(folder, copies=4):
    """[(file name, caption)] for every colour x shape, `copies` images of each."""
    os.makedirs(folder, exist_ok=True)
    rows = []
    k = 0
    for colour in COLOURS:
        for shape in SHAPES:
            for c in range(copies):
                name = f"{colour}_{shape}_{c}.png"
                draw(os.path.join(folder, name), colour, shape, seed=k)
                rows.append((name, f"A {colour} {shape}."))
                k += 1
    return rows


def write_csv(path, rows, extra=()):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        for r in list(rows) + list(extra):
            w.writerow(r)
    return path


def write_coco(root, rows, split="train2014"):
    """COCO layout: root/annotations/captions_<split>.json, images in root/<split>/."""
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    images, anns = [], []
    ids = {}
    for name, cap in rows:
        if name not in ids:
            ids[name] = 100 + len(ids)
            images.append({"id": ids[name], "file_name": name, "height": 48, "width": 48})
        anns.append({"id": len(anns) + 1, "image_id": ids[name], "caption": cap})
    path = os.path.join(root, "annotations", f"captions_{split}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"info": {}, "images": images, "annotations": anns}, f)
    return path
