"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest
import snnrs

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(snnrs.__path__, "snnrs.") if m.name != "snnrs._core")


@pytest.mark.parametrize("name", ["snnrs", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    globs = {"torch": importlib.import_module("torch"), "nn": importlib.import_module("torch.nn")}
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
