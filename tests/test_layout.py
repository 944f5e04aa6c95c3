"""The package's folders and who may import whom: the rules each folder's __init__ states, enforced.

Read from the source (ast), so a lazy import inside a function counts as much as one at the top.
"""
import ast
from pathlib import Path

import pytest

from resnet_course import paths

PACKAGE = paths.ROOT / "resnet_course"
BASE = "(root)"  # paths, atomic, machine: the modules every folder may import
# folder -> the folders its modules may import (its own is always allowed)
ALLOWED = {
    BASE: set(),
    "learner": set(),
    "models": {BASE},
    "data": {BASE, "learner"},
    "training": {BASE, "learner", "models", "data"},
    "course": {BASE, "learner", "data"},
    "grading": {BASE, "learner"},
}
# the learner's hand-written root modules, which the checks and the grader's judge share with the notebook
SHARED_LEARNER_MODULES = {"resnet_checks", "check_cases", "public_tests"}
MAY_IMPORT_SHARED = {"course", "grading"}
# run inside the grading sandbox, where the package is not importable
STAND_ALONE = {"resnet_course/grading/producer.py", "resnet_course/grading/kernel.py"}


def folder_of(module):
    """'resnet_course.learner.training.trainer' -> 'training'; 'resnet_course.paths' -> BASE."""
    parts = module.split(".")  # also 'resnet_course.grading', from `from resnet_course import grading`
    return parts[1] if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir() else BASE


def module_name(path):
    parts = list(path.relative_to(paths.ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """Every module `path` imports, absolute names (relative imports resolved), with line numbers."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base == "resnet_course" or (node.level and not node.module):
                for alias in node.names:  # `from resnet_course import paths`: the names are modules
                    yield f"{base}.{alias.name}", node.lineno
            else:
                yield base, node.lineno


def package_modules():
    return sorted(path for path in PACKAGE.rglob("*.py") if "learner_bundle" not in path.parts)


def test_every_module_sits_in_a_folder_with_a_rule():
    for path in package_modules():
        assert folder_of(module_name(path)) in ALLOWED, f"{path.relative_to(paths.ROOT)}: no import rule for its folder"
    for folder in ALLOWED.keys() - {BASE}:
        init = PACKAGE / folder / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} must say what the folder is for"


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_folder_rules(path):
    source = folder_of(module_name(path))
    relative = str(path.relative_to(paths.ROOT))
    for target, line in imports(path):
        where = f"{relative}:{line} imports {target}"
        if relative in STAND_ALONE:  # the learner's modules are there, the package is not
            assert not target.startswith("resnet_course"), f"{where}: it runs in the sandbox without the package"
            continue
        if target.split(".")[0] in SHARED_LEARNER_MODULES:
            assert source in MAY_IMPORT_SHARED, f"{where}: only course/ and grading/ use the learner's checks"
        elif target.startswith("resnet_course."):
            destination = folder_of(target)
            assert destination == source or destination in ALLOWED[source], \
                f"{where}: {source}/ may import only {sorted(ALLOWED[source] | {source})}"


@pytest.mark.parametrize("name", paths.LEARNER_MODULES)
def test_learner_modules_import_no_package_code(name):
    learner_names = {module.removesuffix(".py") for module in paths.LEARNER_MODULES}
    for target, line in imports(paths.ROOT / name):
        assert not target.startswith("resnet_course"), f"{name}:{line} imports {target}: a learner has no package"
        if target.split(".")[0] in learner_names:
            continue
        assert target.split(".")[0] not in {"train", "evaluate", "bench", "tests"}, f"{name}:{line} imports {target}"


def test_learner_sources_import_only_each_other():
    for path in (PACKAGE / "learner").glob("*.py"):
        for target, line in imports(path):
            if target.startswith("resnet_course"):
                assert target.startswith("resnet_course.learner"), \
                    f"{path.name}:{line} imports {target}: its learner copy could not"
