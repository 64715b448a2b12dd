"""Load a script of examples/ as a module, so a test can call its functions."""
import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(relpath, name):
    """examples/<relpath> as a module called name (run once per call: fresh state)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
