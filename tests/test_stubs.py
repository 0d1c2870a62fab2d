"""The type stub ``snnrs/_core.pyi`` describes the compiled module ``snnrs._core`` as it is.

What mypy's stubtest checks, read from the stub with ``ast`` and from the module with
``inspect``, in well under a second (stubtest itself takes ~25 s and brings mypy along; it
passes too: ``pip install mypy && python -m mypy.stubtest snnrs._core``). Checked: the same
public names (``__all__`` included), every function's and constructor's parameters (names,
order, kinds, defaults), each class's members and properties, ``@final`` exactly where Python
code cannot subclass, and the constants' types. The stub ships in the wheel with ``py.typed``.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import snnrs
from snnrs import _core
from snnrs.backends.cuda import built as cuda_built

STUB = Path(snnrs.__file__).with_name("_core.pyi")
TREE = ast.parse(STUB.read_text(), str(STUB))
CONSTANT_TYPES = {"int": int, "str": str, "float": float, "bool": bool}


def public(name: str) -> bool:
    return not name.startswith("_") or name == "__version__"


def top_level(tree: ast.Module) -> dict[str, ast.AST]:
    """The stub's module-level definitions by name (functions, classes, annotated names,
    assignments)."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            names.update((t.id, node) for t in node.targets if isinstance(t, ast.Name))
    return names


STUBS = top_level(TREE)


def cuda_only(name: str) -> bool:
    return name == "Cuda" or name.lower().startswith("cuda_")


def expected_names() -> set[str]:
    """The stub's public names, less the CUDA ones when the module was built without them."""
    names = {n for n in STUBS if public(n)}
    return names if cuda_built() else {n for n in names if not cuda_only(n)}


def stub_all() -> list[str]:
    node = STUBS["__all__"]
    assert isinstance(node, ast.Assign)
    return list(ast.literal_eval(node.value))


def stub_params(fn: ast.FunctionDef, drop_first: bool) -> list[tuple[str, str, bool]]:
    """(name, kind, has a default) of each parameter, as ``inspect`` names the kinds."""
    a = fn.args
    positional = [(p, "POSITIONAL_ONLY") for p in a.posonlyargs]
    positional += [(p, "POSITIONAL_OR_KEYWORD") for p in a.args]
    first_default = len(positional) - len(a.defaults)
    out = [(p.arg, kind, i >= first_default) for i, (p, kind) in enumerate(positional)]
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", False))
    out += [(p.arg, "KEYWORD_ONLY", d is not None)
            for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", False))
    return out[1:] if drop_first else out


def runtime_params(obj) -> list[tuple[str, str, bool]]:
    sig = inspect.signature(obj)  # PyO3 gives every function and constructor a text signature
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in sig.parameters.values()]


def decorators(node: ast.FunctionDef | ast.ClassDef) -> set[str]:
    return {d.id if isinstance(d, ast.Name) else ast.unparse(d) for d in node.decorator_list}


def subclassable(cls: type) -> bool:
    try:
        type("Sub", (cls,), {})
    except TypeError:
        return False
    return True


def test_stub_and_marker_are_in_the_package():
    here = Path(snnrs.__file__).parent
    assert (here / "py.typed").is_file()
    assert Path(_core.__file__).parent == here  # the stub sits beside the module it describes


def test_same_public_names():
    runtime = {n for n in dir(_core) if public(n)}
    assert runtime == expected_names(), (
        f"in the module only: {sorted(runtime - expected_names())}; "
        f"in the stub only: {sorted(expected_names() - runtime)}")


def skip_unless_built(name: str) -> None:
    """Skips a test of a CUDA-only name when the module was built without CUDA."""
    if cuda_only(name) and not cuda_built():
        pytest.skip("built without the cargo feature cuda")


def test_same_all():
    assert set(_core.__all__) == {n for n in stub_all() if cuda_built() or not cuda_only(n)}
    assert set(stub_all()) == {n for n in STUBS if public(n)}


FUNCTIONS = sorted(n for n, node in STUBS.items()
                   if isinstance(node, ast.FunctionDef) and public(n))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_signature(name):
    skip_unless_built(name)
    fn = getattr(_core, name)
    assert callable(fn)
    assert stub_params(STUBS[name], drop_first=False) == runtime_params(fn)


CLASSES = sorted(n for n, node in STUBS.items() if isinstance(node, ast.ClassDef))


@pytest.mark.parametrize("name", CLASSES)
def test_class(name):
    skip_unless_built(name)
    node, cls = STUBS[name], getattr(_core, name)
    assert isinstance(cls, type)
    assert ("final" in decorators(node)) == (not subclassable(cls)), "@final"
    members = {m.name if isinstance(m, ast.FunctionDef) else m.target.id: m
               for m in node.body if isinstance(m, ast.FunctionDef | ast.AnnAssign)}
    runtime = {n for n in vars(cls) if not n.startswith("_")}
    assert runtime == {n for n in members if not n.startswith("_")}, "public members"
    for member, m in members.items():
        value = inspect.getattr_static(cls, member, None)
        assert value is not None, f"{name}.{member} is not in the module"
        if isinstance(m, ast.AnnAssign):  # ClassVar[...] of the class itself: enum members
            assert isinstance(getattr(cls, member), cls), f"{name}.{member}"
        elif "property" in decorators(m):
            assert inspect.isdatadescriptor(value), f"{name}.{member} is not a property"
        elif member == "__new__":
            assert stub_params(m, drop_first=True) == runtime_params(cls), f"{name}()"
        elif member != "__int__":  # slot wrappers have no signature to compare
            assert stub_params(m, drop_first=True) == runtime_params(value)[1:], (
                f"{name}.{member}")
    assert "__init__" not in members or "__new__" in members, (
        "PyO3 classes take their arguments in __new__")


CONSTANTS = sorted(n for n, node in STUBS.items()
                   if isinstance(node, ast.AnnAssign) and public(n))


@pytest.mark.parametrize("name", CONSTANTS)
def test_constant_type(name):
    skip_unless_built(name)
    annotation = ast.unparse(STUBS[name].annotation)
    assert annotation in CONSTANT_TYPES, f"add {annotation} to CONSTANT_TYPES"
    assert isinstance(getattr(_core, name), CONSTANT_TYPES[annotation])


def test_version_is_the_package_version():
    from importlib.metadata import version

    assert snnrs.__version__ == _core.__version__ == version("snnrs")
