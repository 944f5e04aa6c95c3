"""Sanitised HTML for nbgrader's pages: what a student wrote is shown, never run, in a browser.

nbgrader's formgrader (the instructor's submission page, inside the instructor's Jupyter server) and
`nbgrader generate_feedback` (the HTML the class receives) render the autograded notebook with
nbconvert's HTMLExporter and nbgrader's own templates. nbconvert's `HTMLExporter.sanitize_html`
makes its templates pass code-cell outputs through the `clean_html` filter (and drop JavaScript and
widget outputs), but nbgrader's templates render Markdown cells and the "Comments" panel with
`markdown2html` alone, so a student's `<script>` or `<img onerror=...>` in a Markdown cell ran with
the instructor's session (it could call Jupyter's contents API with the XSRF cookie and write files).

instructor/nbgrader_config.py therefore sets `sanitize_html` and replaces two of the exporter's Jinja
filters with the ones here (`c.HTMLExporter.filters`), for every nbgrader template alike:

- `markdown2html`: nbconvert's own Markdown rendering (math, attachments, anchor links), then `clean`;
- `clean_html`: `clean`, stricter than nbconvert's (which allows no images, and any link).

`clean` (bleach, the library nbconvert uses) keeps text formatting, lists, tables, code and images:
tags not listed are shown as text, attributes other than these are dropped, links only to http(s),
mailto or within the page, images only from relative paths (the course's figures) or as inline PNG,
JPEG or GIF data: an image from anywhere else would be a request the student chose.
"""
import html
import re
from urllib.parse import urlsplit

import bleach
import jinja2
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

TAGS = frozenset(bleach.ALLOWED_TAGS) | {
    "p", "div", "span", "pre", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
    "th", "td", "img", "sub", "sup", "del", "s", "dl", "dt", "dd", "kbd", "em", "strong", "blockquote", "code"}
PROTOCOLS = ("http", "https", "mailto", "data")  # data: only for images, checked in _allowed
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*\Z", re.IGNORECASE)


_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # what a browser strips from both ends of a URL (WHATWG)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _relative(url):
    """A path relative to the page (no scheme, host or leading slash): the course's own files.

    Read as a browser reads it: a URL with a control character anywhere is refused, since a browser
    drops them from its ends (and tabs and newlines from anywhere), so that `\\x01\\\\host/x` would be
    `\\\\host/x`, which it reads as `//host/x` (a backslash is a slash in http(s) and file URLs)."""
    if _CONTROL.search(url):
        return False
    url = url.strip(_C0_OR_SPACE)
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith(("/", "\\"))


def _allowed_url(tag, name, value):
    if tag == "a" and name == "href":
        return value.strip().startswith("#") or _relative(value) or \
            urlsplit(value.strip()).scheme.lower() in ("http", "https", "mailto")
    if tag == "img" and name == "src":
        return _relative(value) or bool(_DATA_IMAGE.match(value.strip()))
    return False


def _allowed(tag, name, value):
    """bleach's attribute filter: (tag, attribute name, value) -> keep it."""
    if name in ("class", "title", "alt"):  # class: nbconvert's own markup (highlighting, anchor links)
        return True
    if name in ("href", "src"):  # bleach hands over the value with its character references (&#1;) as written
        return all(_allowed_url(tag, name, form) for form in {value, html.unescape(value)})
    if tag == "img" and name in ("width", "height"):
        return value.strip().isdigit()
    return tag in ("td", "th") and name in ("align", "colspan", "rowspan")


def clean(html):
    """`html` (str or bytes) with only inert markup left (see the module doc); what is removed of a
    tag is shown as escaped text, so nothing the student wrote disappears silently."""
    html = html.decode() if isinstance(html, bytes) else str(html)
    return bleach.clean(html, tags=TAGS, attributes=_allowed, protocols=PROTOCOLS, strip_comments=True)


@jinja2.pass_context
def markdown2html(context, source):
    """Jinja filter: Markdown to sanitised HTML, rendered as HTMLExporter.markdown2html does with its
    default settings (the cell's attachments, anchor links), then `clean`."""
    cell = context.get("cell", {}) or {}
    path = context.get("resources", {}).get("metadata", {}).get("path", "")
    renderer = IPythonRenderer(escape=False, attachments=cell.get("attachments", {}), embed_images=False,
                               path=path, anchor_link_text="¶", exclude_anchor_links=False)
    return clean(MarkdownWithMath(renderer=renderer).render(source or ""))


def clean_html(element):
    """Jinja filter replacing nbconvert's `clean_html` (outputs, raw cells, SVG): `clean`."""
    return clean(element)
