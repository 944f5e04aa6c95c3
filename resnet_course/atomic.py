"""Write a file so that readers see either the old complete file or the new complete one.

(Also JSON in a readable layout: one key per line, short lists of numbers on one line.)

A crash (or Ctrl-C) while writing leaves the previous file untouched: the new content
goes to a temporary file in the same folder, which then replaces the target in one
``os.replace`` (atomic within a file system).
"""
import contextlib
import json
import os
import secrets
from pathlib import Path


def temp_path_next_to(target):
    """A new empty file in ``target``'s folder, named like ``target`` (".name.<random>.tmp.ext").

    Created exclusively, so two writers never share it; not tempfile.mkstemp, whose files
    are private (0600) where ours follow the umask. The suffix is kept because some
    writers insist on it (Keras saves only to ``.keras``, ``np.savez`` appends ``.npz``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = target.parent / f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}"
        try:
            open(tmp, "xb").close()
            return tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_output(target):
    """``with atomic_output(target) as tmp:`` write ``tmp``; it replaces ``target`` on success."""
    tmp = temp_path_next_to(target)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def json_text(data, indent=2, _level=0):
    """JSON with one dict key per line and every list of plain values on one line (a
    confusion matrix reads as a table, a history as one line per metric)."""
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(data, dict) and data:
        items = [f"{inner}{json.dumps(str(k))}: {json_text(v, indent, _level + 1)}"
                 for k, v in data.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(data, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in data):
        items = [f"{inner}{json_text(v, indent, _level + 1)}" for v in data]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(data)


def write_json(target, data):
    """Write ``data`` as readable JSON (json_text) to ``target``, atomically."""
    with atomic_output(target) as tmp:
        tmp.write_text(json_text(data) + "\n")
