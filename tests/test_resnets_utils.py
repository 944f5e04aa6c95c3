"""The learner-facing data helpers of resnets_utils.py: loading, one-hot, samples, own photo."""
import re

import matplotlib

matplotlib.use("Agg")

import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import resnets_utils  # noqa: E402
from resnets_utils import (  # noqa: E402
    DatasetError,
    ImageError,
    convert_to_one_hot,
    load_dataset,
    load_my_image,
    load_photo,
    show_samples,
)

M_TRAIN, M_TEST = 12, 6


def course_arrays(prefix, m, seed=0):
    """The datasets of one SIGNS file in the course's exact dtypes and shapes."""
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}_set_x": rng.integers(0, 256, (m, 64, 64, 3), dtype=np.uint8),
        f"{prefix}_set_y": np.arange(m, dtype=np.int64) % 6,
        "list_classes": np.arange(6, dtype=np.int64),
    }


def write_h5(path, arrays):
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)


@pytest.fixture
def data_dir(tmp_path):
    """A folder with a valid train/test pair in the course's format."""
    write_h5(tmp_path / "train_signs.h5", course_arrays("train", M_TRAIN, seed=1))
    write_h5(tmp_path / "test_signs.h5", course_arrays("test", M_TEST, seed=2))
    return tmp_path


def test_course_format_loads_unchanged(data_dir):
    X_train, Y_train, X_test, Y_test, classes = load_dataset(data_dir)
    train, test = course_arrays("train", M_TRAIN, seed=1), course_arrays("test", M_TEST, seed=2)
    assert X_train.dtype == np.uint8 and X_train.shape == (M_TRAIN, 64, 64, 3)
    assert np.array_equal(X_train, train["train_set_x"])
    assert np.array_equal(X_test, test["test_set_x"])
    assert Y_train.dtype == np.int64 and Y_train.shape == (1, M_TRAIN)
    assert np.array_equal(Y_train[0], train["train_set_y"])
    assert Y_test.shape == (1, M_TEST) and np.array_equal(Y_test[0], test["test_set_y"])
    assert classes.dtype == np.int64 and classes.tolist() == [0, 1, 2, 3, 4, 5]


def test_path_accepts_a_string(data_dir):
    assert load_dataset(str(data_dir))[0].shape == (M_TRAIN, 64, 64, 3)


def _assert_one_clear_error(path, *fragments):
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, DatasetError)
    assert isinstance(info.value, ValueError)
    return message


def test_missing_file(data_dir):
    (data_dir / "test_signs.h5").unlink()
    _assert_one_clear_error(data_dir, "test_signs.h5", "not found", "ResNet50.zip")


def test_truncated_file(data_dir):
    train = data_dir / "train_signs.h5"
    train.write_bytes(train.read_bytes()[:5000])
    _assert_one_clear_error(data_dir, "train_signs.h5", "not a readable HDF5 file", "ResNet50.zip")


def test_file_that_is_not_hdf5(data_dir):
    (data_dir / "train_signs.h5").write_text("<html>404 Not Found</html>")
    _assert_one_clear_error(data_dir, "train_signs.h5", "not a readable HDF5 file",
                            "download")


def test_missing_key(data_dir):
    arrays = course_arrays("train", M_TRAIN)
    arrays["train_set_label"] = arrays.pop("train_set_y")
    write_h5(data_dir / "train_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "train_signs.h5", "missing dataset 'train_set_y'",
                            "train_set_label")


def test_test_keys_in_the_train_file(data_dir):
    write_h5(data_dir / "train_signs.h5", course_arrays("test", M_TRAIN))
    _assert_one_clear_error(data_dir, "train_signs.h5", "missing dataset 'train_set_x'")


@pytest.mark.parametrize("bad_x, found", [
    (np.zeros((M_TRAIN, 64, 64, 3), np.float32), "float32"),
    (np.zeros((M_TRAIN, 32, 32, 3), np.uint8), "(12, 32, 32, 3)"),
    (np.zeros((M_TRAIN, 64, 64), np.uint8), "(12, 64, 64)"),
])
def test_wrong_image_shape_or_dtype(data_dir, bad_x, found):
    arrays = course_arrays("train", M_TRAIN)
    arrays["train_set_x"] = bad_x
    write_h5(data_dir / "train_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "train_signs.h5", "(m, 64, 64, 3)", found)


def test_float_labels(data_dir):
    arrays = course_arrays("test", M_TEST)
    arrays["test_set_y"] = arrays["test_set_y"].astype(np.float64)
    write_h5(data_dir / "test_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "test_signs.h5", "'test_set_y'", "integer", "float64")


def test_length_mismatch(data_dir):
    arrays = course_arrays("train", M_TRAIN)
    arrays["train_set_y"] = arrays["train_set_y"][:-1]
    write_h5(data_dir / "train_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "train_signs.h5", "12 images", "11 labels")


def test_labels_outside_list_classes(data_dir):
    arrays = course_arrays("test", M_TEST)
    arrays["test_set_y"][2] = 9
    write_h5(data_dir / "test_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "test_signs.h5", "labels [9]", "[0, 1, 2, 3, 4, 5]")


def test_train_and_test_with_different_classes(data_dir):
    arrays = course_arrays("test", M_TEST)
    arrays["list_classes"] = np.arange(10, dtype=np.int64)
    write_h5(data_dir / "test_signs.h5", arrays)
    _assert_one_clear_error(data_dir, "different classes")


def test_convert_to_one_hot_has_course_semantics():
    Y = np.array([[1, 0, 5, 2]])
    one_hot = convert_to_one_hot(Y, 6)
    assert one_hot.shape == (6, 4)
    assert np.array_equal(one_hot, np.eye(6)[Y.reshape(-1)].T)
    assert np.array_equal(one_hot.T.argmax(axis=1), [1, 0, 5, 2])


def test_convert_to_one_hot_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="0..5"):
        convert_to_one_hot(np.array([[0, 6]]), 6)
    with pytest.raises(ValueError, match="0..5"):
        convert_to_one_hot(np.array([[-1, 0]]), 6)  # would silently wrap around otherwise


def test_show_samples_returns_a_labelled_grid(data_dir):
    X, Y, _, _, classes = load_dataset(data_dir)
    fig = show_samples(X, Y, classes, n=8, seed=3)
    try:
        titled = [ax for ax in fig.axes if ax.get_title()]
        assert len(titled) == 8
        assert all(ax.get_title().startswith("y = ") for ax in titled)
        again = show_samples(X, Y, classes, n=8, seed=3)
        assert [ax.get_title() for ax in again.axes] == [ax.get_title() for ax in fig.axes]
        plt.close(again)
    finally:
        plt.close(fig)


def _save(path, size, mode="RGB", color=(200, 30, 30)):
    Image.new(mode, size, color if mode == "RGB" else color + (0,)).save(path)
    return path


def test_load_my_image_shape_dtype(tmp_path):
    x = load_my_image(_save(tmp_path / "photo.jpg", (100, 100)))
    assert x.shape == (1, 64, 64, 3) and x.dtype == np.uint8
    assert load_my_image(tmp_path / "photo.jpg", size=32).shape == (1, 32, 32, 3)


def test_load_my_image_crops_the_centre_of_a_wide_photo(tmp_path):
    pixels = np.zeros((100, 300, 3), np.uint8)
    pixels[:, 100:200] = 255  # white centre square between black side bands
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    x = load_my_image(tmp_path / "wide.png")
    assert x.min() == 255  # nothing of the side bands remains


def test_load_my_image_converts_transparent_png_to_rgb_on_white(tmp_path):
    x = load_my_image(_save(tmp_path / "clear.png", (80, 80), mode="RGBA"))
    assert x.shape == (1, 64, 64, 3) and x.min() == 255


def test_load_my_image_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_my_image(tmp_path / "nothing.jpg")


def test_load_my_image_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(ImageError, match="not an image") as info:
        load_my_image(tmp_path / "notes.jpg")
    assert isinstance(info.value, ValueError)


def test_learner_file_does_not_import_the_instructor_package():
    source = open(resnets_utils.__file__).read()
    assert not re.search(r"^\s*(from|import)\s+resnet_course", source, re.MULTILINE)
    assert "# ---- Data ----" in source


# ---- A phone photo as it comes: any size, EXIF rotation, the hand anywhere ----

def _hand_photo(height, width, centre, radii):
    from synthetic_photos import BACKGROUNDS, SKIN_TONES, photo
    return photo(height, width, BACKGROUNDS["white"], SKIN_TONES["medium"], centre=centre, radii=radii)


def _hand_fills_the_view(view):
    """The hand (with its forearm reaching the bottom edge) fills the view as in the SIGNS photos."""
    from resnet_course.learner.hand_framing import MARGIN, hand_box

    top, left, bottom, right = hand_box(view[0])
    side = view.shape[1]
    assert bottom == side  # upright: the forearm enters from the bottom
    assert bottom - top >= side / (1 + 2 * MARGIN) - 3
    assert abs((left + right) / 2 - side / 2) <= 4


def test_load_my_image_frames_a_small_hand_in_a_large_photo(tmp_path):
    pixels = _hand_photo(3000, 4000, centre=(2500, 3200), radii=(180, 130))
    Image.fromarray(pixels).save(tmp_path / "large.jpg", quality=92)
    _hand_fills_the_view(load_my_image(tmp_path / "large.jpg"))


def test_load_my_image_frames_a_hand_in_a_small_photo(tmp_path):
    pixels = _hand_photo(48, 36, centre=(30, 14), radii=(8, 6))
    Image.fromarray(pixels).save(tmp_path / "small.png")
    view = load_my_image(tmp_path / "small.png")
    assert view.shape == (1, 64, 64, 3)
    _hand_fills_the_view(view)


def test_load_my_image_turns_a_photo_upright_by_its_exif_orientation(tmp_path):
    upright = _hand_photo(600, 450, centre=(250, 150), radii=(60, 45))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the sensor stored it sideways
    Image.fromarray(np.rot90(upright)).save(tmp_path / "phone.jpg", exif=exif, quality=92)
    np.testing.assert_allclose(load_photo(tmp_path / "phone.jpg"), upright, atol=40)
    _hand_fills_the_view(load_my_image(tmp_path / "phone.jpg"))


def _save_16_bit_grey(path, pixels16):
    """A 16-bit greyscale PNG (Pillow mode I;16) of pixels16 (uint16 (h, w))."""
    Image.frombytes("I;16", pixels16.shape[::-1], pixels16.astype("<u2").tobytes()).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_a_16_bit_greyscale_photo_is_read_by_what_it_holds_not_as_a_white_square(tmp_path):
    # Issue 29, finding 7: Pillow's I;16 -> RGB conversion clips every value above 255, so a
    # 16-bit photo became all 255 and the model classified a white square.
    upright = _hand_photo(120, 90, centre=(70, 45), radii=(25, 18))
    grey8 = np.asarray(Image.fromarray(upright).convert("L"))
    grey16 = grey8.astype(np.uint16) * 257  # 0-255 -> 0-65535
    path = _save_16_bit_grey(tmp_path / "grey16.png", grey16)
    photo = load_photo(path)
    assert photo.dtype == np.uint8 and photo.shape == (120, 90, 3)
    np.testing.assert_array_equal(photo, np.repeat(grey8[..., None], 3, axis=2))
    view = load_my_image(path)
    assert view.min() < 200, "the hand is still there after framing"


def test_a_32_bit_integer_or_float_image_is_scaled_from_its_own_range(tmp_path):
    ramp = np.linspace(0, 1, 64 * 48).reshape(64, 48)
    expected = np.round(ramp * 255).astype(np.uint8)
    Image.fromarray((ramp * 65535).astype(np.int32), mode="I").save(tmp_path / "int.tif")
    Image.fromarray(ramp.astype(np.float32), mode="F").save(tmp_path / "float.tif")
    for name in ("int.tif", "float.tif"):
        photo = load_photo(tmp_path / name)
        assert photo.dtype == np.uint8 and photo.shape == (64, 48, 3), name
        np.testing.assert_allclose(photo[..., 0], expected, atol=1, err_msg=name)


def test_a_wrong_photo_path_or_data_file_shows_one_line_in_jupyter(tmp_path):
    # Issue 29, finding 8: IPython showed three frames of resnets_utils for a misspelt photo path.
    for attempt in (lambda: load_my_image(tmp_path / "my_hand.jpg"), lambda: load_dataset(tmp_path)):
        with pytest.raises(ValueError) as info:
            attempt()
        assert info.value._render_traceback_() == [f"{type(info.value).__name__}: {info.value}"]
