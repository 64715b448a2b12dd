"""Is this thread flushing denormals (MXCSR FTZ/DAZ)? A framework that set
the flags and left them on would speed up every framework measured after it
in the same thread; run.py checks after each case and records the answer."""
import numpy as np

_TINY = np.array([1e-39], np.float32)          # a float32 denormal


def flushed():
    """True when a denormal input reads as zero (DAZ) or a denormal result
    comes out as zero (FTZ) in this thread."""
    daz = (_TINY * np.float32(1.0))[0] == 0.0
    ftz = (np.array([1e-30], np.float32) * np.float32(1e-9))[0] == 0.0
    return bool(daz or ftz)
