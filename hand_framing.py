# Generated from the course's learner/hand_framing.py; edit that, not this copy.
"""Finding the hand in a photo with a plain background, and framing it as the SIGNS photos do.

The SIGNS photos show one hand filling most of a square frame. A phone photo of a hand sign
usually does not: the hand is smaller, off-centre, and the photo is not square. The backgrounds
are plain, though, so the hand is what differs from the border's colour. `hand_box` finds it,
`frame_hand` crops a square around it (padding with the background colour where the square
leaves the photo), so the model sees the hand at the size it was trained on.

numpy and Pillow only: the learner's `load_my_image` uses the same code.
"""
import numpy as np
from PIL import Image

# Fraction of the shorter side that makes up the border ring whose colour is the background's.
BORDER = 0.04
# A row or column belongs to the hand when at least this fraction of its pixels differ from the
# background (ignores specks of noise and thin shadows).
MIN_COVERAGE = 0.04
# Smallest chromaticity difference from the background that counts as the hand (JPEG noise and
# a white wall's tint stay below it; skin under the same light is 0.05-0.15 away).
MIN_CHROMA_DIFFERENCE = 0.02
# Space left on each side of the hand, as a fraction of its larger side: in the SIGNS photos the
# hand's larger side is a median 55 of 64 pixels, which this margin reproduces.
MARGIN = 0.08


def background_colour(image):
    """Median colour of the border ring of an (h, w, 3) image: the plain background's colour."""
    image = np.asarray(image, dtype=np.float32)
    h, w = image.shape[:2]
    k = max(1, int(round(BORDER * min(h, w))))
    ring = np.concatenate([image[:k].reshape(-1, 3), image[-k:].reshape(-1, 3),
                           image[:, :k].reshape(-1, 3), image[:, -k:].reshape(-1, 3)])
    return np.median(ring, axis=0)


def _otsu_threshold(values, bins=64):
    """The threshold that best splits values into two groups (Otsu 1979)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centres)
    total_weight, total_mean = weight[-1], mean[-1]
    between = np.zeros(bins)
    inner = (weight > 0) & (weight < total_weight)
    w0, m0 = weight[inner], mean[inner]
    between[inner] = (total_mean * w0 / total_weight - m0) ** 2 / (w0 * (total_weight - w0))
    return centres[int(np.argmax(between))]


def chromaticity(image):
    """(r, g) = (R, G) / (R + G + B) of every pixel: colour without brightness."""
    image = np.asarray(image, dtype=np.float32) + 1.0
    return image[..., :2] / image.sum(axis=-1, keepdims=True)


def foreground_mask(image):
    """Boolean (h, w) mask of the pixels whose colour (not brightness) differs from the background's.

    Chromaticity, not RGB distance: a plain background under uneven light (the SIGNS photos'
    dark corners, a shadow) changes brightness but keeps its colour, while skin of every tone
    is redder than a white or grey wall under the same light.
    """
    image = np.asarray(image, dtype=np.float32)
    background = chromaticity(background_colour(image)[np.newaxis, np.newaxis])[0, 0]
    distance = np.linalg.norm(chromaticity(image) - background, axis=-1)
    # A plain photo with nothing on it has only noise: never call noise a hand.
    threshold = max(_otsu_threshold(distance), MIN_CHROMA_DIFFERENCE)
    return distance > threshold


def _extent(coverage):
    """First and last index whose coverage reaches MIN_COVERAGE, or None."""
    inside = np.flatnonzero(coverage >= MIN_COVERAGE)
    return (int(inside[0]), int(inside[-1]) + 1) if inside.size else None


def hand_box(image):
    """(top, left, bottom, right) of the hand in an (h, w, 3) image, or None when none is found."""
    mask = foreground_mask(image)
    rows, columns = _extent(mask.mean(axis=1)), _extent(mask.mean(axis=0))
    if rows is None or columns is None:
        return None
    return rows[0], columns[0], rows[1], columns[1]


def square_around(box, image_shape):
    """(top, left, side) of the square that holds box with MARGIN around it.

    Centred on the hand, except where the hand runs into an edge of the photo (a forearm entering
    from the bottom or a side): there the square is flush with that edge, as in the SIGNS photos,
    where the forearm leaves through the bottom. The square may reach outside the photo on the
    other sides (frame_hand pads there).
    """
    top, left, bottom, right = box
    side = max(int(round(max(bottom - top, right - left) * (1 + 2 * MARGIN))), 1)
    origin = []
    for low, high, size in ((top, bottom, image_shape[0]), (left, right, image_shape[1])):
        if high >= size and low > 0:
            origin.append(size - side)
        elif low <= 0 and high < size:
            origin.append(0)
        else:
            origin.append(int(round((low + high) / 2 - side / 2)))
    return origin[0], origin[1], side


def frame_hand(image):
    """The square crop of an (h, w, 3) uint8 image that the model should see.

    The hand, with a margin, centred in a square; where the square leaves the photo it is filled
    with the background's colour. With no hand found, the largest centred square.
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
    box = hand_box(image)
    if box is None:
        return centre_square(image)
    top, left, side = square_around(box, image.shape)
    canvas = np.empty((side, side, 3), dtype=image.dtype)
    canvas[...] = np.round(background_colour(image)).astype(image.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + side, h), min(left + side, w)
    canvas[src_top - top:src_bottom - top, src_left - left:src_right - left] = \
        image[src_top:src_bottom, src_left:src_right]
    return canvas


def centre_square(image):
    """The largest centred square of an (h, w, 3) image (a copy)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side].copy()


def resized(square, size):
    """A square uint8 image resized to size x size with antialiasing (Lanczos, the filter the SIGNS
    files were built with)."""
    return np.asarray(Image.fromarray(square).resize((size, size), Image.LANCZOS), dtype=np.uint8)


def model_view(image, size=64):
    """What the model sees of a photo: frame_hand, then resized. uint8 (size, size, 3)."""
    return resized(frame_hand(np.asarray(image, dtype=np.uint8)), size)


def to_8_bits(img):
    """A one-channel image of 16-bit ("I;16*"), 32-bit integer ("I") or float ("F") pixels as an
    8-bit "L" image: 16-bit values (and integers above 255) / 257, floats in 0-1 * 255, anything
    else as 0-255. Pillow's own conversion clips at 255 instead: a 16-bit photo became white."""
    values = np.asarray(img, dtype=np.float64)
    top = values.max(initial=0)
    if img.mode.startswith("I;16") or top > 255:
        values = values / 257  # 0-65535 -> 0-255
    elif img.mode == "F" and top <= 1:
        values = values * 255
    return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), mode="L")
