"""Finding and framing the hand (resnet_course.learner.hand_framing) on synthetic photos.

A "hand" is a skin-coloured ellipse with a forearm running to the bottom edge; the backgrounds are
plain (white, grey, beige), some with dark corners like the SIGNS photos, some lit unevenly.
"""
import numpy as np
import pytest
from synthetic_photos import BACKGROUNDS, SKIN_TONES, photo

from resnet_course.learner.hand_framing import MARGIN, frame_hand, hand_box, model_view


@pytest.mark.parametrize("skin", SKIN_TONES)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_the_box_holds_the_hand_on_every_background_and_skin_tone(skin, background):
    image = photo(240, 320, BACKGROUNDS[background], SKIN_TONES[skin], centre=(90, 220), radii=(40, 30),
                  forearm=False)
    top, left, bottom, right = hand_box(image)
    assert abs(top - 50) <= 3 and abs(bottom - 131) <= 3
    assert abs(left - 190) <= 3 and abs(right - 251) <= 3


def test_dark_corners_are_background_not_hand():
    image = photo(64, 64, BACKGROUNDS["white"], SKIN_TONES["light"], centre=(30, 32), radii=(14, 10),
                  forearm=False, vignette=0.6)
    top, left, bottom, right = hand_box(image)
    assert abs(top - 16) <= 2 and abs(bottom - 45) <= 2 and abs(left - 22) <= 2 and abs(right - 43) <= 2


def test_the_forearm_runs_to_the_bottom_edge_as_in_the_signs_photos():
    image = photo(300, 200, BACKGROUNDS["grey"], SKIN_TONES["medium"], centre=(120, 70), radii=(30, 24))
    top, left, bottom, right = hand_box(image)
    assert abs(top - 90) <= 3 and bottom == 300
    assert abs(left - 46) <= 3 and abs(right - 95) <= 3


@pytest.mark.parametrize("centre", [(60, 60), (60, 260), (180, 60), (180, 260), (120, 160)])
def test_frame_hand_centres_a_small_off_centre_hand_in_a_square(centre):
    image = photo(240, 320, BACKGROUNDS["beige"], SKIN_TONES["light"], centre=centre, radii=(30, 22),
                  forearm=False)
    framed = frame_hand(image)
    side = framed.shape[0]
    assert framed.shape == (side, side, 3)
    assert side == pytest.approx(60 * (1 + 2 * MARGIN), abs=4)  # the hand's larger side plus margins
    top, left, bottom, right = hand_box(framed)
    assert abs((top + bottom) / 2 - side / 2) <= 2 and abs((left + right) / 2 - side / 2) <= 2


def test_where_the_square_leaves_the_photo_it_is_filled_with_the_background():
    background = BACKGROUNDS["white"]
    image = photo(200, 200, background, SKIN_TONES["dark"], centre=(30, 30), radii=(28, 28), forearm=False)
    framed = frame_hand(image)
    corner = framed[:3, :3].reshape(-1, 3).astype(int)
    assert np.all(np.abs(corner - background) <= 8)
    assert hand_box(framed) is not None


def test_a_photo_without_a_hand_gives_its_centred_square():
    image = photo(120, 200, BACKGROUNDS["grey"], SKIN_TONES["light"], centre=(-500, -500), radii=(1, 1),
                  forearm=False)
    assert hand_box(image) is None
    framed = frame_hand(image)
    assert framed.shape == (120, 120, 3)
    np.testing.assert_array_equal(framed, image[:, 40:160])


def test_model_view_is_the_framed_hand_at_the_model_size():
    image = photo(480, 640, BACKGROUNDS["white"], SKIN_TONES["medium"], centre=(300, 500), radii=(60, 45),
                  forearm=False)
    view = model_view(image, size=64)
    assert view.shape == (64, 64, 3) and view.dtype == np.uint8
    top, left, bottom, right = hand_box(view)
    assert bottom - top == pytest.approx(64 / (1 + 2 * MARGIN), abs=3)  # the hand's height fills the frame
