"""nbgrader configuration of the course folder (run nbgrader commands from this directory).

    cd instructor && ../.venv/bin/nbgrader generate_assignment ResNet50 --force --no-db
    cd instructor && ../.venv/bin/nbgrader validate source/ResNet50/ResNet50.ipynb
    cd instructor && ../.venv/bin/nbgrader generate_feedback ResNet50   # after python -m resnet_course.grading
    cd instructor && ../.venv/bin/nbgrader export

`make release` does the first (into a temporary folder) and copies the result to ../ResNet50.ipynb.
Grading is `python -m resnet_course.grading` (sandboxed, parallel), not `nbgrader autograde`. Should
formgrader's buttons be used instead (plain `nbgrader autograde` + `generate_feedback`), the feedback
still shows no hidden test (resnet_course/grading/nbgrader_hidden.py) and a correct submission runs
with no error cell (nbgrader_files.py). Formgrader's pages and the feedback show what students wrote
as inert HTML (nbgrader_html.py) when nbgrader reads this file: start Jupyter for formgrader here.
"""
import os
import sys

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde
from nbgrader.preprocessors import GetGrades

from resnet_course.grading import nbgrader_html
from resnet_course.grading.nbgrader_files import CourseFolders
from resnet_course.grading.nbgrader_hidden import HideHiddenTests
from resnet_course.paths import COURSE_ID

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

c.CourseDirectory.course_id = COURSE_ID
# nbgrader runs `alembic` from PATH when it creates gradebook.db; the interpreter running nbgrader
# (../.venv/bin/python) has it beside itself, so the commands above work with no activated venv.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
# `nbgrader validate` (and a plain `nbgrader autograde`) execute the whole notebook, training
# included; nbgrader's default limit is 30 s per cell.
c.Execute.timeout = 7200
# nbgrader copies the source assignment's files for autograde but not its linked folders (datasets/,
# images/): CourseFolders links them into the autograded folder first, so a correct submission runs
# through without an error (resnet_course/grading/nbgrader_files.py).
c.Autograde.autograde_preprocessors = [
    CourseFolders, *Autograde.class_traits()["autograde_preprocessors"].make_dynamic_default()]
# nbgrader's feedback shows the autograded notebook: the graded cells' hidden tests and whatever they
# (or the student's cells) printed of them are removed on the way to HTML (nbgrader's own list + one).
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
# formgrader's submission page (in your Jupyter server: start it in this folder) and the feedback
# render what students wrote (their Markdown, their cells' outputs under plain autograde, the texts
# quoted in comments): as inert HTML, never as script (resnet_course/grading/nbgrader_html.py).
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"markdown2html": nbgrader_html.markdown2html, "clean_html": nbgrader_html.clean_html}

# Where your course publishes what learners open, for `make release` (none by default; BUNDLE_URL=,
# COLAB_REPOSITORY= or COLAB_URL= on make's command line replace these for one release):
# c.ResNetCourse.bundle_url = "https://course.example.edu/resnet50/"  # the web folder you upload release/ResNet50-files.zip to
# c.ResNetCourse.colab_repository = "owner/name"  # the GitHub repository with ResNet50.ipynb at its root (main branch)
