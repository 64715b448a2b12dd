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
