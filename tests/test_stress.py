"""The "elsewhere" stress set (resnet_course.stress): reproducible, graded, and honest about its limits."""
import numpy as np
import pytest
from synthetic_photos import BACKGROUNDS, SKIN_TONES, photo

from resnet_course.hand_framing import hand_box
from resnet_course.stress import SEVERITIES, stress_curve, stress_images


@pytest.fixture(scope="module")
def hands():
    return np.stack([photo(64, 64, BACKGROUNDS["white"], SKIN_TONES["light"], centre=(28, 32),
                           radii=(16, 12), vignette=0.5, seed=i) for i in range(8)])


def test_severity_zero_is_the_images_as_they_are(hands):
    np.testing.assert_array_equal(stress_images(hands, 0), hands)


def test_the_same_seed_gives_the_same_copy_and_another_seed_another(hands):
    np.testing.assert_array_equal(stress_images(hands, 2, seed=3), stress_images(hands, 2, seed=3))
    assert not np.array_equal(stress_images(hands, 2, seed=3), stress_images(hands, 2, seed=4))


def test_higher_severity_makes_the_hand_smaller_and_moves_it_further(hands):
    def mean_hand_area_and_offset(images):
        areas, offsets = [], []
        for image in images:
            top, left, bottom, right = hand_box(image)
            areas.append((bottom - top) * (right - left))
            offsets.append(np.hypot((top + bottom) / 2 - 32, (left + right) / 2 - 32))
        return np.mean(areas), np.mean(offsets)

    stats = [mean_hand_area_and_offset(stress_images(hands, s)) for s in SEVERITIES]
    areas, offsets = zip(*stats)
    assert areas[4] < areas[2] < areas[0]
    assert offsets[4] > offsets[0]


def test_the_background_is_new_and_has_no_dark_corners(hands):
    stressed = stress_images(hands, 3)
    corners = stressed[:, :4, :4].reshape(-1, 3).mean(axis=0)
    original_corners = hands[:, :4, :4].reshape(-1, 3).mean(axis=0)
    assert corners.mean() > original_corners.mean() + 20


def test_bad_input_gets_a_clear_error(hands):
    with pytest.raises(ValueError, match="uint8 images"):
        stress_images(hands / 255.0, 1)
    with pytest.raises(ValueError, match="severity must be one of"):
        stress_images(hands, 7)


def test_stress_curve_reports_accuracy_per_severity(hands):
    labels = np.arange(len(hands)) % 6
    curve = stress_curve(lambda images: labels, hands, labels)
    assert curve == {s: 1.0 for s in SEVERITIES}
