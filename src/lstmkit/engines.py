"""Choose the engine that runs a cell: "reference" (plain NumPy), "fast"
(compiled kernels) or "auto" (fast where a kernel exists, else reference)."""
from . import cells, kernels

ENGINES = ("auto", "fast", "reference")


def get_engine(cell, engine="auto"):
    if cell not in cells.CELLS:
        raise ValueError(f"unknown cell {cell!r}; expected one of {sorted(cells.CELLS)}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    if engine == "reference":
        return cells.CELLS[cell]
    fast = kernels.KERNELS.get(cell)
    if fast is None:
        if engine == "fast":
            raise NotImplementedError(f"no fast kernel for cell {cell!r} yet; use engine='reference'")
        return cells.CELLS[cell]
    return fast
