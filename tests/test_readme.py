"""The README is a user's door: short, and every command in it (and in docs/) runs as written.

The instructor commands run for real in tests/test_instructor_commands.py, the training commands at a
tiny size in tests/test_train_evaluate.py; here every command line of the README's and the guides'
`bash` blocks is checked to name a real make target, script or module and options its parser accepts.
"""
import importlib
import re
import shlex

import pytest

import evaluate
import train
from resnet_course import paths
from tests.test_instructor_commands import INSTRUCTOR_COMMANDS

DOCUMENTS = ("README.md", "docs/LEARNERS.md", "docs/INSTRUCTORS.md", "docs/PRACTITIONERS.md")
MAKE_TARGETS = set(re.findall(r"^([a-z][\w-]*):", (paths.ROOT / "Makefile").read_text(), re.MULTILINE))
SCRIPTS = {"train.py": train.build_parser, "evaluate.py": evaluate.build_parser}


def command_lines(document):
    """(line number, command) for each command of the document's ```bash blocks, comments dropped."""
    text = (paths.ROOT / document).read_text(encoding="utf8")
    for block in re.finditer(r"```bash\n(.*?)```", text, re.DOTALL):
        first_line = text.count("\n", 0, block.start()) + 2
        logical = ""
        for offset, line in enumerate(block[1].splitlines()):
            logical += line.split("  #")[0].strip() if not line.strip().startswith("#") else ""
            if logical.endswith("\\"):
                logical = logical[:-1] + " "
                continue
            if logical:
                yield first_line + offset, logical
            logical = ""


ALL_COMMANDS = [(document, number, command) for document in DOCUMENTS for number, command in command_lines(document)]


def test_the_readme_is_short():
    assert len((paths.ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("document, number, command", ALL_COMMANDS, ids=lambda v: str(v)[:60])
def test_each_command_runs_as_written(document, number, command):
    where = f"{document}:{number}: {command}"
    if command in INSTRUCTOR_COMMANDS:
        return  # run as written by tests/test_instructor_commands.py
    words = shlex.split(command)
    if words[0] in ("umask", "openssl", "for", "done"):
        return  # INSTRUCTORS.md's certificates for a TLS cluster: run as written by tests/test_grading_cluster.py
    if words[0] == "make":
        targets = [word for word in words[1:] if "=" not in word]
        assert set(targets) <= MAKE_TARGETS, f"{where}: no such make target"
        return
    if words[0] == "python" or words[0].endswith("/python"):
        if words[1] == "-m":
            module = importlib.import_module(words[2])
            arguments = words[3:]
            parser = getattr(module, "build_parser", None)
        else:
            assert words[1] in SCRIPTS, f"{where}: unknown script"
            arguments, parser = words[2:], SCRIPTS[words[1]]
        if parser is not None:
            parser().parse_args(arguments)  # an unknown or malformed option exits (SystemExit) here
        return
    assert words[0].endswith(("/dask", "/jupyter", "/pip")) or words[0] in ("unzip", "cd"), f"{where}: not checked"
