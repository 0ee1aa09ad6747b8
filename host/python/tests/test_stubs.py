"""The wheel ships type stubs (PEP 561) that name exactly what the module has."""

import ast
import importlib.util
import pathlib

import kad


def stub():
    path = pathlib.Path(importlib.util.find_spec("kad").origin).with_name("__init__.pyi")
    assert path.with_name("py.typed").exists()
    return ast.parse(path.read_text())


def test_the_stubs_name_every_public_class_function_and_method_of_the_module():
    tree = stub()
    top = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    assigned = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target])}
    public = {name for name in dir(kad) if not name.startswith("_") and name != "kad"}
    assert public == (top | assigned) - {"Key", "Value", "__version__"}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        stubbed = {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))} - {"__init__"}
        actual = {name for name in vars(getattr(kad, cls.name)) if not name.startswith("_")}
        assert stubbed == actual, cls.name
