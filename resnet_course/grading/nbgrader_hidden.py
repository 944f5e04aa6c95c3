"""An nbgrader preprocessor that keeps hidden tests out of `nbgrader generate_feedback`'s HTML.

Plain nbgrader (`nbgrader autograde`, formgrader's buttons) writes the autograded notebook with the
graded cells' full source, hidden tests included, and their outputs; `generate_feedback` turns that
notebook into the HTML a student receives. `HideHiddenTests` (registered for GenerateFeedback in
instructor/nbgrader_config.py, after GetGrades) changes the notebook on its way to HTML:

- every `### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS` region leaves the cells' source (a region
  without its end marker runs to the end of the cell; nothing a student types can make it fail);
- in a graded cell with a hidden region, the outputs the hidden part produced are dropped: the
  public part ends with its "All tests passed!" line (`public_done`), so all text after the first
  such line and every later output are the hidden part's; an error raised in the hidden part (after
  that line, or at a hidden line by its traceback) becomes "Failed the hidden tests." (no message,
  no traceback); an error in the public part keeps its message, without the cell's frames (their
  context lines may show hidden code);
- any output of any cell that shows hidden content verbatim (a line of a hidden region, a name it
  assigns, a number of five or more digits it holds) is replaced by a one-line notice: a student's
  cell after the tests can print what the kernel holds.

What it cannot do: plain nbgrader runs the student's code in the kernel that runs the hidden tests,
so a determined student can carry hidden data out in a form no filter recognises (encoded, written
to a file). The course's own grader (`python -m resnet_course.grading`, docs/GRADING.md) never
gives student code the hidden expected values; this preprocessor makes the plain route safe against
the ordinary leaks.
"""
import ast
import html
import io
import re
import tokenize

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

HIDDEN_FAILED = "Failed the hidden tests."
REMOVED = "[output removed from the feedback: it showed hidden test content]"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The cell's own frame in an ipykernel traceback: "Cell In[13], line 5" (or IPython's older form)
_CELL_FRAME = re.compile(r"(?:Cell In\s*\[\s*\d*\s*\],\s*line\s+"
                         r"|<ipython-input-\d+-[0-9a-f]+>[^\n]*?(?:line\s+|:))(\d+)")
_MIN_LINE = 20  # shorter hidden lines (e.g. "]") are not evidence of a leak
_MIN_NAME = 8
_MIN_DIGITS = 5


def split_hidden(source, begin, end):
    """(source without hidden regions, 1-based line where the first region began or None, [region texts])."""
    kept, regions, first, region = [], [], None, None
    for number, line in enumerate(source.split("\n"), start=1):
        if region is None and begin in line:
            region, first = [line], first or number
        elif region is not None:
            region.append(line)
            if end in line:
                regions.append("\n".join(region))
                region = None
        else:
            kept.append(line)
    if region is not None:
        regions.append("\n".join(region))
    return "\n".join(kept).rstrip() + ("\n" if source.endswith("\n") else ""), first, regions


def fingerprints(regions, begin, end):
    """What betrays hidden content in an output: the markers, hidden lines, assigned names, long numbers."""
    marks = {begin, end}
    for region in regions:
        marks.update(line.strip() for line in region.splitlines() if len(line.strip()) >= _MIN_LINE)
        try:
            tree = ast.parse(region)
            marks.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
                         and isinstance(node.ctx, ast.Store) and len(node.id) >= _MIN_NAME)
        except SyntaxError:
            pass
        try:
            for token in tokenize.generate_tokens(io.StringIO(region).readline):
                if token.type == tokenize.NUMBER and len(token.string.replace(".", "").lstrip("0")) >= _MIN_DIGITS:
                    marks.add(token.string)
                    if token.string.isdigit():
                        marks.add(f"{int(token.string):,}")
        except (tokenize.TokenError, SyntaxError):
            pass
    return marks


def _texts(output):
    """Every text an output shows, ANSI colours removed and HTML unescaped."""
    texts = []
    if output.get("output_type") == "stream":
        texts.append(output.get("text", ""))
    elif output.get("output_type") == "error":
        texts += [output.get("ename", ""), output.get("evalue", ""), "\n".join(output.get("traceback", []))]
    else:
        for mime, value in (output.get("data") or {}).items():
            if mime.startswith("text/") or mime.endswith("json") or mime == "image/svg+xml":
                texts.append(value if isinstance(value, str) else "".join(value) if isinstance(value, list)
                             else str(value))
    return [html.unescape(_ANSI.sub("", text if isinstance(text, str) else "".join(text))) for text in texts]


def _error_line(output):
    """The line of the cell an error output's traceback points at, or None when it does not say."""
    match = _CELL_FRAME.search(_ANSI.sub("", "\n".join(output.get("traceback", []))))
    return int(match.group(1)) if match else None


class HideHiddenTests(NbGraderPreprocessor):
    """Removes hidden test regions and what they printed from the notebook feedback is made from."""

    # the names and defaults of nbgrader's ClearHiddenTests, so one setting can serve both
    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="Marks the start of a hidden region").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS", help="Marks the end of a hidden region").tag(config=True)
    public_done = Unicode("All tests passed!", help="The line a graded cell's public part prints last").tag(config=True)

    def preprocess(self, nb, resources):
        begin, end = self.begin_test_delimeter, self.end_test_delimeter
        regions = []
        for cell in nb.cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
                regions += split_hidden(cell.source, begin, end)[2]
        marks = fingerprints(regions, begin, end)
        for cell in nb.cells:
            cell.source, first_hidden, _ = split_hidden(cell.source, begin, end)
            if cell.cell_type != "code":
                continue
            outputs = cell.get("outputs", [])
            if first_hidden is not None:
                outputs = self._public_outputs(outputs, first_hidden)
            cell.outputs = [self._scrubbed(output, marks) for output in outputs]
        return nb, resources

    def _public_outputs(self, outputs, first_hidden):
        """The outputs a graded cell's public part produced (see the module doc)."""
        kept = []
        for output in outputs:
            if output.get("output_type") == "error":
                # the marker was not printed yet, so the public part raised it (unless its line says otherwise)
                line = _error_line(output)
                if line is not None and line >= first_hidden:
                    kept.append(new_output("error", ename="Failed", evalue=HIDDEN_FAILED, traceback=[HIDDEN_FAILED]))
                else:
                    # a traceback through the cell's frame shows the lines around it, the hidden ones too:
                    # keep the message only (a check's own rendering, without cell frames, stays)
                    message = f"{output.get('ename', '')}: {output.get('evalue', '')}"
                    traceback = [message] if line is not None else list(output.get("traceback", []))
                    kept.append(new_output("error", ename=output.get("ename", ""), evalue=output.get("evalue", ""),
                                           traceback=traceback))
                return kept  # nothing runs after an error in a cell
            if output.get("output_type") == "stream":
                text = output.get("text", "")
                text = text if isinstance(text, str) else "".join(text)
                if self.public_done in _ANSI.sub("", text):
                    # cut after the line holding the marker (ANSI codes may surround it)
                    shown = []
                    for line in text.splitlines(keepends=True):
                        shown.append(line)
                        if self.public_done in _ANSI.sub("", line):
                            break
                    kept.append(new_output("stream", name=output.get("name", "stdout"), text="".join(shown)))
                    return kept + self._hidden_error(outputs[outputs.index(output) + 1:])
            kept.append(output)
        return kept

    @staticmethod
    def _hidden_error(rest):
        # the hidden part's own outputs are dropped; its failure is shown without a word of it
        if any(output.get("output_type") == "error" for output in rest):
            return [new_output("error", ename="Failed", evalue=HIDDEN_FAILED, traceback=[HIDDEN_FAILED])]
        return []

    @staticmethod
    def _scrubbed(output, marks):
        if any(mark in text for text in _texts(output) for mark in marks):
            return new_output("stream", name="stdout", text=REMOVED + "\n")
        return output
