"""The finite-difference helpers live in the library (lstmkit.gradcheck), so
users can check their own cells; the tests import them from here."""
from lstmkit.gradcheck import (EPS, numeric_grad, rel_err, map_nested, flatten_nested,  # noqa: F401
                               cell_gradient_errors, layer_gradient_errors, check_cell)
