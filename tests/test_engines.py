import pytest

from lstmkit.engines import get_engine
from lstmkit.cells import lstm as reference_lstm


def test_reference_engine_is_the_cell_module():
    assert get_engine("lstm", "reference") is reference_lstm


def test_bad_names_are_reported():
    with pytest.raises(ValueError, match="unknown cell 'lsmt'"):
        get_engine("lsmt")
    with pytest.raises(ValueError, match="engine must be one of .* got 'gpu'"):
        get_engine("lstm", "gpu")
