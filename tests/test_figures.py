"""The committed block diagrams in images/ are exactly what resnet_course.course.figures draws."""
import io

import pytest
from PIL import Image

from resnet_course.course import figures


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_committed_figure_equals_a_fresh_drawing(name):
    path = figures.IMAGES / name
    assert path.is_file(), f"{path} is missing; run `make figures`"
    assert path.read_bytes() == figures.render(name), f"{path} is stale; run `make figures`"


def test_drawing_is_deterministic_and_unstamped():
    first, second = figures.render("identity_block.png"), figures.render("identity_block.png")
    assert first == second
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == "PNG"
        assert "Software" not in image.info  # a version stamp would change the bytes on upgrade


def test_stale_figures_names_a_changed_file(tmp_path):
    for name in figures.FIGURES:
        (tmp_path / name).write_bytes(figures.render(name))
    (tmp_path / "resnet50.png").write_bytes(b"not the drawing")
    assert figures.stale_figures(tmp_path) == ["resnet50.png"]
