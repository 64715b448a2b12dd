"""Caption readers (COCO, Flickr, CSV, Tux Paint) on small generated fixtures, and
the clear errors: a missing image, an unreadable image, a caption file naming images
that do not exist, an empty caption."""
import os

import numpy as np
import pytest

from caption_fixture import draw, shapes_set, write_coco, write_csv
from lstmkit.data import captions
from lstmkit.data.errors import DataError
from lstmkit.data.images import load_image, open_rgb


@pytest.fixture
def shapes(tmp_path):
    folder = tmp_path / "img"
    return folder, shapes_set(str(folder), copies=2)


def test_csv_groups_rows_of_one_image(tmp_path, shapes):
    folder, rows = shapes
    path = write_csv(tmp_path / "caps.csv", rows, extra=[(rows[0][0], "Something red.")])
    cs = captions.read_csv(str(path), images=str(folder))
    assert len(cs) == len(rows)
    assert cs.captions[0] == [rows[0][1], "Something red."]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in cs.images)


def test_csv_paths_relative_to_the_csv_folder(tmp_path, shapes):
    folder, rows = shapes
    path = write_csv(folder / "caps.csv", rows)
    cs = captions.read_csv(str(path))
    assert [os.path.basename(p) for p in cs.images] == [r[0] for r in rows]


def test_coco_layout(tmp_path):
    rows = shapes_set(str(tmp_path / "train2014"), copies=1)
    rows2 = rows + [(rows[1][0], "Another caption.")]
    path = write_coco(str(tmp_path), rows2)
    cs = captions.read_coco(path)                          # images found in root/train2014
    assert len(cs) == len(rows)
    assert cs.captions[1] == [rows[1][1], "Another caption."]


def test_flickr_token_file_and_captions_txt(tmp_path):
    rows = shapes_set(str(tmp_path / "Flicker8k_Dataset"), copies=1)
    token = tmp_path / "Flickr8k.token.txt"
    token.write_text("".join(f"{n}#{k}\t{c} {k}\n" for n, c in rows for k in range(2)), encoding="utf-8")
    cs = captions.read_flickr(str(token))
    assert len(cs) == len(rows) and cs.captions[0] == [rows[0][1] + " 0", rows[0][1] + " 1"]
    kaggle = tmp_path / "captions.txt"
    write_csv(kaggle, rows)
    cs2 = captions.read_flickr(str(kaggle), images=str(tmp_path / "Flicker8k_Dataset"))
    assert cs2.captions == [[c] for _, c in rows]


def test_caption_file_naming_missing_images(tmp_path, shapes):
    folder, rows = shapes
    extra = [(f"gone_{k}.png", "A ghost.") for k in range(5)]
    path = write_csv(tmp_path / "caps.csv", rows, extra=extra)
    with pytest.raises(DataError) as e:
        captions.read_csv(str(path), images=str(folder))
    msg = str(e.value)
    assert "5 caption line(s) name images that do not exist" in msg
    assert f"line {len(rows) + 2}" in msg and "gone_0.png" in msg and "(and 2 more)" in msg


def test_empty_caption_names_the_line(tmp_path, shapes):
    folder, rows = shapes
    bad = list(rows)
    bad[3] = (bad[3][0], "   ")
    path = write_csv(tmp_path / "caps.csv", bad)
    with pytest.raises(DataError, match=r"caps.csv, line 5: empty caption for image"):
        captions.read_csv(str(path), images=str(folder))


def test_coco_empty_caption_and_unknown_image_id(tmp_path):
    rows = shapes_set(str(tmp_path / "val2017"), copies=1)
    path = write_coco(str(tmp_path), [(rows[0][0], "")], split="val2017")
    with pytest.raises(DataError, match=r"annotations\[0\]: empty caption"):
        captions.read_coco(path)


def test_missing_and_unreadable_images(tmp_path):
    with pytest.raises(DataError, match="no such image file"):
        load_image(tmp_path / "nope.png", 32)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"broken.png: cannot read it as an image"):
        open_rgb(bad)


def test_rgba_composited_on_white(tmp_path):
    p = draw(str(tmp_path / "t.png"), "blue", "disc", size=40, rgba=True)
    x = load_image(p, 40)
    assert x.shape == (40, 40, 3) and x.dtype == np.float32
    assert np.allclose(x[0, 0], 1.0)                       # transparent corner -> white
    assert x[20, 20, 2] > 0.8 and x[20, 20, 0] < 0.2       # blue centre


def _stamp(folder, name, lines, png=True):
    os.makedirs(folder, exist_ok=True)
    if png:
        draw(os.path.join(folder, name + ".png"), "red", "disc", rgba=True)
    if lines is not None:
        with open(os.path.join(folder, name + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def test_tuxpaint_layout(tmp_path):
    root = tmp_path / "stamps"
    _stamp(root / "animals" / "birds", "crow", ["A crow.", "af.utf8=’n Kraai.", "zh_CN.utf8=乌鸦。"])
    _stamp(root / "animals" / "birds", "crow_mirror", None)                   # variants have no text
    _stamp(root / "food", "apple", ["An apple.", "de.utf8=Ein Apfel."])
    _stamp(root / "food", "svgonly", ["Only a vector image."], png=False)
    en = captions.read_tuxpaint(str(root))
    assert en.captions == [["A crow."], ["An apple."]] and en.groups == ["animals", "food"]
    zh = captions.read_tuxpaint(str(root), lang="zh")
    assert zh.captions == [["乌鸦。"]]                      # the apple has no zh_CN line
    with pytest.raises(DataError, match="no such folder"):
        captions.read_tuxpaint(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no stamp PNG with a caption in 'en'"):
        captions.read_tuxpaint(str(tmp_path / "empty"))


def test_read_any_needs_a_file_for_file_formats():
    with pytest.raises(DataError, match="needs a file"):
        captions.read_any("csv")
    with pytest.raises(DataError, match="unknown caption data"):
        captions.read_any("parquet", __file__)


def test_emoji_names_have_both_languages():
    from lstmkit.data.emoji_images import emoji_names
    rows = emoji_names()
    assert len(rows) > 1000
    names = {e: n for e, n, _ in rows}
    assert names["🍼"] == {"en": "baby bottle", "zh": "奶瓶"}
    assert all(len(e.replace("\ufe0f", "")) == 1 for e in names)


@pytest.mark.slow
def test_emoji_drawn_from_the_noto_font(tmp_path):
    """The real font from the data cache (9.9 MB download when not cached yet)."""
    cs = captions.read_emoji("en", folder=str(tmp_path / "emoji"), progress=False)
    assert len(cs) > 1200
    i = [os.path.basename(p) for p in cs.images].index(f"u{ord('🍼'):05x}.png")
    assert cs.captions[i] == ["baby bottle"]
    x = load_image(cs.images[i], 64)
    assert x.std() > 0.05                                  # not blank
    zh = captions.read_emoji("zh", folder=str(tmp_path / "emoji"), progress=False)   # rendered once
    assert zh.images == cs.images and zh.captions[i] == ["奶瓶"]
