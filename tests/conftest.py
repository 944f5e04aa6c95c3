"""Shared test set-up: TensorFlow starts as the project's entry points start it (oneDNN kernels
on, quiet). The package and the learner modules import through the editable install.

Under pytest-xdist (`make test` = `pytest -n auto`) this file also sets how the tests are shared
between the workers, so that the suite fits CI's time on 2 cores (bench/test_suite.md):
- every test module is one work unit (its module-scoped fixtures, often a notebook run or a grader
  run, are then computed once, not once per worker), except the long tests of UNITS_OF_THEIR_OWN,
  which share no costly fixture with the rest of their module and run beside it;
- the units start longest first (UNIT_SECONDS, measured), so that no long unit is left for the end
  while the other worker is idle.
"""
from resnet_course.learner import tf_environment

tf_environment.apply_defaults()

import pytest  # noqa: E402 (after the TensorFlow defaults, as in the entry points)

# Tests (module::function, every parametrization) that are a work unit of their own.
UNITS_OF_THEIR_OWN = {
    "test_grading_batch.py::test_without_bubblewrap_nothing_is_recorded_and_a_rerun_grades_with_the_settings_in_the_key",
    "test_grading_batch.py::test_a_fault_of_the_grading_machine_is_an_error_never_a_grade_and_a_rerun_grades_it",
    "test_notebook.py::test_nbgrader_validate_fails_on_the_unsolved_release",
    "test_distributed.py::test_a_lost_worker_stops_the_other_with_one_line_and_a_resumable_checkpoint",
}

# Seconds each unit took in bench/test_suite.md's run (AVX-512 machine, shared: load about 12; only the
# order matters); units not listed are short and keep their collection order after these.
UNIT_SECONDS = {
    "test_grading_batch.py": 935,
    "test_notebook.py": 647,
    "test_browser.py": 626,
    "test_grading_cheats.py": 373,
    "test_grading_batch.py::test_without_bubblewrap_nothing_is_recorded_and_a_rerun_grades_with_the_settings_in_the_key": 369,
    "test_instructor_commands.py": 273,
    "test_plain_nbgrader.py": 420,  # estimated: the 263 s of its leaker test plus a whole correct notebook
    "test_grading_redteam.py": 200,
    "test_distributed.py": 300,  # measured under load (about 14 on 2 cores): 4 min 30 s
    "test_distributed.py::test_a_lost_worker_stops_the_other_with_one_line_and_a_resumable_checkpoint": 90,
    "test_train_evaluate.py": 129,
    "test_colab_setup.py": 84,
    "test_grading_judge.py": 73,
    "test_grading_sandbox.py": 69,
    "test_fused.py": 50,
    "test_notebook.py::test_nbgrader_validate_fails_on_the_unsolved_release": 47,
}


LOADGROUP_INPUT = "resnet_course_loadgroup"  # tells the workers that the controller switched


def _unit(item):
    """The work unit of a test: its module, or module::function for UNITS_OF_THEIR_OWN."""
    module = item.path.name
    own = f"{module}::{getattr(item, 'originalname', item.name)}"
    return own if own in UNITS_OF_THEIR_OWN else module


def pytest_configure(config):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: it parsed the command line anew, without the switch below
        config.option.loadgroup = config.option.loadgroup or workerinput.get(LOADGROUP_INPUT, False)
        return
    # `-n N` alone means --dist load, which deals tests out one by one: switch to loadgroup (units
    # as above, in the order below) unless a --dist was asked for.
    if getattr(config.option, "dist", "no") == "load" and not any(
            arg == "-d" or arg.startswith("--dist") for arg in config.invocation_params.args):
        config.option.dist = "loadgroup"
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False  # xdist would order units by their number of tests


@pytest.hookimpl(optionalhook=True)  # an xdist hook (absent under -p no:xdist)
def pytest_configure_node(node):
    node.workerinput[LOADGROUP_INPUT] = node.config.option.dist == "loadgroup"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (-UNIT_SECONDS.get(_unit(item), 0), order[id(item)]))
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            item.add_marker(pytest.mark.xdist_group(_unit(item)))


def pytest_terminal_summary(terminalreporter):
    """Prints what tests recorded as ("setting changes", text) in their user_properties (the property
    test of the checks, tests/test_check_settings.py: how many setting changes it tried)."""
    lines = [value for key in ("passed", "failed") for report in terminalreporter.stats.get(key, [])
             if report.when == "call" for name, value in report.user_properties if name == "setting changes"]
    if lines:
        terminalreporter.section("setting changes tried by the checks' property test")
        for line in lines:
            terminalreporter.write_line(line)
