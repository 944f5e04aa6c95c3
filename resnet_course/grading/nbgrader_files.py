"""An nbgrader preprocessor that gives plain `nbgrader autograde` the course's data and images folders.

Before it runs a submission, `nbgrader autograde` (and formgrader's autograde button) copies the
source assignment's files into the autograded folder, but it walks the source folder without following
links to folders: instructor/source/ResNet50/ holds `datasets` and `images` as links to the learner
files at the repository's root, so the run had no SIGNS data and no photo. The notebook's setup cell
then said "The course files are missing", the data cell "datasets/train_signs.h5: file not found" and
every later cell failed on a name never defined: 12 error cells in a correct submission's feedback.

`CourseFolders` (first of `Autograde.autograde_preprocessors` in instructor/nbgrader_config.py, before
`Execute`) links each such folder of the source assignment into the autograded folder when the
submission did not bring its own. Links, not copies: nbgrader's feedback step copies the autograded
folder's files to the student's feedback without following links, as here, so the data set does not
go into every student's feedback. (Plain nbgrader runs the student's code with the instructor's rights,
links or not: see docs/GRADING.md; the course's own grader never runs it outside its sandbox.)
"""
import os
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_ignored


class CourseFolders(NbGraderPreprocessor):
    """Links the source assignment's linked folders (datasets/, images/) into the notebook's folder."""

    def preprocess(self, nb, resources):
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        assignment = resources.get("nbgrader", {}).get("assignment")
        if not assignment:
            return nb, resources
        coursedir = CourseDirectory(parent=self)  # the course's settings (nbgrader runs in its root)
        source = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
        for entry in sorted(source.iterdir()) if source.is_dir() else ():
            target = folder / entry.name
            if not (entry.is_symlink() and entry.is_dir()) or is_ignored(str(entry), coursedir.ignore) \
                    or os.path.lexists(target):
                continue
            self.log.info("Linking %s -> %s", target, entry.resolve())
            target.symlink_to(entry.resolve(), target_is_directory=True)
        return nb, resources
