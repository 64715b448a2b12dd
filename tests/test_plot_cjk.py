"""Chinese in plots: with fonts-wqy-microhei from the data cache registered,
titles and heat-map labels in Chinese render without matplotlib's
missing-glyph warning (which this test turns into a failure)."""
import warnings

import numpy as np
import pytest

from lstmkit import plotting

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cjk_font(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTMKIT_DATA", str(tmp_path_factory.mktemp("cache")))      # fetched anew: 1.6 MB
    name = plotting.use_cjk_font(fetch=True, log=print)
    yield name
    mp.undo()


@pytest.mark.slow
def test_chinese_titles_and_heat_map_labels_render(cjk_font, tmp_path):
    assert cjk_font == "WenQuanYi Micro Hei" or "CJK" in cjk_font
    tokens = list("床前明月光，疑是地上霜。")
    assert plotting.drawable("".join(tokens)) == "".join(tokens)        # nothing replaced by '?'
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # "Glyph ... missing" fails the test
        plotting.gate_heatmap(np.random.default_rng(0).random((len(tokens), 6)), tokens,
                              tmp_path / "gates.png", "遺忘門 forget gate: 床前明月光")
        plotting.history({"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}, tmp_path / "h.png", "唐詩 語言模型")
        plotting.lm_curve([(0, 0, 9, 9), (60, 1000, 8, 8.5)], tmp_path / "c.png", "全唐詩 2x256",
                          {"Kneser-Ney 4-gram 驗證": 6.4})
    for f in ("gates.png", "h.png", "c.png"):
        assert (tmp_path / f).read_bytes()[:8] == PNG


@pytest.mark.slow
def test_the_check_can_fail_without_the_font(cjk_font, tmp_path):
    plt = plotting._plt()
    fig, ax = plt.subplots()
    ax.set_title("床前明月光", family="DejaVu Sans")                  # no CJK glyphs in this one
    with pytest.warns(UserWarning, match="Glyph .* missing from font"):
        fig.savefig(tmp_path / "boxes.png")
    plt.close(fig)


def test_font_found_at_its_declared_path_without_searching(tmp_path, monkeypatch):
    """The font is looked up where its source says it is, never searched for: an
    installed package has the root /, and a recursive search there once ran for
    over an hour in CI."""
    from lstmkit import datasets
    rel = datasets.SOURCES[plotting.CJK_FONT_DATASET].files["font"]
    monkeypatch.setattr(datasets, "path", lambda name, prefer_system=True: tmp_path)
    stray = tmp_path / "somewhere" / "deep" / plotting.CJK_FONT_FILE
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    assert plotting._cached_font_file(False, None) is None            # not at the declared path
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(b"x")
    assert plotting._cached_font_file(False, None) == str(tmp_path / rel)
