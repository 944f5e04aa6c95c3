"""The "elsewhere" stress set (resnet_course.learner.stress): reproducible, graded, and honest about its limits."""
import numpy as np
import pytest
from synthetic_photos import BACKGROUNDS, SKIN_TONES, photo

from resnet_course.learner import stress
from resnet_course.learner.hand_framing import foreground_mask, hand_box
from resnet_course.learner.stress import (SEVERITIES, cast_shadow, plot_recall_per_class, recall_per_class, stress_curve,
                                          stress_images, turn_hand)


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


def hand_width_and_height(image):
    top, left, bottom, right = hand_box(image)
    return right - left, bottom - top


def test_a_turned_hand_is_narrower_and_as_tall():
    # An upright hand (no forearm: the squeeze is about the hand's own centre) on a wide frame.
    hand = photo(64, 96, BACKGROUNDS["grey"], SKIN_TONES["medium"], centre=(32, 48), radii=(20, 18),
                 forearm=False)
    width, height = hand_width_and_height(hand)
    turned_width, turned_height = hand_width_and_height(turn_hand(hand, squeeze=0.4, shear=0.0))
    assert abs(turned_width - 0.6 * width) <= 2
    assert abs(turned_height - height) <= 1


def test_a_sheared_hand_leans_over():
    hand = photo(64, 96, BACKGROUNDS["white"], SKIN_TONES["light"], centre=(32, 48), radii=(20, 10),
                 forearm=False)
    mask = foreground_mask(turn_hand(hand, squeeze=0.0, shear=0.5))
    top_columns, bottom_columns = np.nonzero(mask[18:24])[1], np.nonzero(mask[40:46])[1]
    # x moves 0.5 px per pixel below the centre: the bottom of the hand ~11 px right of the top.
    assert bottom_columns.mean() - top_columns.mean() > 8


@pytest.mark.parametrize("skin", sorted(SKIN_TONES))
def test_a_cast_shadow_darkens_only_the_background(skin):
    image = photo(64, 64, BACKGROUNDS["beige"], SKIN_TONES[skin], centre=(28, 32), radii=(16, 12))
    mask = foreground_mask(image)
    picture = image / 255.0
    shadowed = cast_shadow(picture, mask, offset=(6, -4), darkness=0.4, blur=1.5)
    np.testing.assert_array_equal(shadowed[mask], picture[mask])  # the hand is as it was
    background = ~mask
    assert np.all(shadowed[background] <= picture[background])
    darker = 1 - shadowed[background].mean(axis=-1) / picture[background].mean(axis=-1)
    assert darker.max() > 0.3  # close to the full darkness beside the hand
    # The shadow falls to the offset's side (right, up): the background left of the hand keeps its light.
    np.testing.assert_array_equal(shadowed[:, :12], picture[:, :12])


def test_the_stress_set_turns_every_hand_and_casts_its_shadow_more_at_each_severity(hands, monkeypatch):
    shadows, turns = [], []
    real_cast_shadow, real_turn_matrix = stress.cast_shadow, stress.turn_matrix
    monkeypatch.setattr(stress, "cast_shadow", lambda picture, mask, offset, darkness, blur: (
        shadows.append((np.hypot(*offset), darkness)), real_cast_shadow(picture, mask, offset, darkness, blur))[1])
    monkeypatch.setattr(stress, "turn_matrix", lambda centre, squeeze, shear: (
        turns.append((squeeze, abs(shear))), real_turn_matrix(centre, squeeze, shear))[1])
    means = []
    for severity in SEVERITIES[1:]:
        shadows.clear(), turns.clear()
        stress_images(hands, severity)
        assert len(shadows) == len(turns) == len(hands)
        offsets, darkness = np.array(shadows).T
        squeezes, shears = np.array(turns).T
        assert np.all(darkness <= 0.1 * severity) and np.all(squeezes <= 0.12 * severity)
        assert np.all(darkness > 0) and np.all(squeezes > 0) and np.all(offsets > 0)
        means.append([offsets.mean(), darkness.mean(), squeezes.mean(), shears.mean()])
    assert np.all(np.diff(means, axis=0) > 0)


def test_recall_per_class_counts_each_class_alone():
    y_true = np.array([0, 0, 1, 1, 1, 1, 3])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 3])
    recall = recall_per_class(y_true, y_pred, 4)
    np.testing.assert_array_equal(recall[[0, 1, 3]], [0.5, 0.5, 1.0])
    assert np.isnan(recall[2])  # no photo of class 2
    # SIGNS' (1, m) labels and one-hot / probability rows give the same numbers.
    np.testing.assert_array_equal(recall_per_class(y_true[np.newaxis], np.eye(4)[y_pred], 4), recall)
    with pytest.raises(ValueError, match="7 labels but 6 predictions"):
        recall_per_class(y_true, y_pred[:6], 4)


def test_stress_curve_per_class_finds_the_class_that_breaks(hands):
    labels = np.arange(len(hands)) % 2
    # A "model" that calls class 1 right only on unchanged photos.
    curve = stress_curve(lambda images: np.where(np.all(images == hands, axis=(1, 2, 3)), labels, 0),
                         hands, labels, per_class=True)
    np.testing.assert_array_equal(curve[0], [1.0, 1.0])
    for severity in SEVERITIES[1:]:
        np.testing.assert_array_equal(curve[severity], [1.0, 0.0])


def test_the_recall_heat_map_has_a_row_per_sign_and_a_column_per_set():
    import matplotlib
    matplotlib.use("Agg")
    figure = plot_recall_per_class({"test": np.array([1.0, 0.5]), "severity 1": np.array([0.9, 0.25])},
                                   ["0", "1"])
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["test", "severity 1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sign 0", "sign 1"]
    assert "25%" in [t.get_text() for t in ax.texts]
