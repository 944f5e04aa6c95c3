# Generated from the course's learner/stress.py; edit that, not this copy.
"""A harder stand-in for "photos taken elsewhere": held-out images changed in ways training mostly never uses.

Photos of the same six signs taken by other people with another camera differ from SIGNS mainly
in framing (smaller hands, off-centre, tilted up to 90 degrees, left hands) and light (warmer,
brighter, a plain background with no dark corners, other skin tones). `stress_images(X, severity)`
imitates that on held-out images, more strongly at each severity from 0 (the images as they
are) to 4:

- the hand is cut out (`hand_framing.foreground_mask`) and put on a NEW plain background of a
  random light tone with a lighting gradient (training never sees a new background: its shifts
  and zooms fill with the photo's own edge pixels);
- a projective warp (training's geometry is affine only): the hand shrinks to 1 - 0.12 s of the
  frame, turns by up to 22.5 s degrees, is tilted in depth and moved off-centre by up to 0.08 s;
- every other image is mirrored from severity 2 on (left hands; training flips too, and a
  mirror-averaged model does not see it);
- colour temperature (warm light; training's reaches +-0.12, this one 0.05 s), a gamma curve and a
  darker or lighter skin tone (training's light changes are brightness, contrast and colour temperature);
- a turned hand (`turn_matrix`): the hand squeezed sideways by up to 0.12 s of its width and sheared,
  as when it turns about its vertical axis towards a side view and the raised fingers close up
  (training's zoom keeps the hand's proportions);
- a cast shadow (`cast_shadow`): the hand's silhouette, offset by up to 0.035 s of the frame, blurred
  and darkening the background by up to 0.1 s, as a lamp beside the hand throws it on the wall
  (training never darkens part of a photo).

It is a stand-in, not proof: the changes are guesses at what differs elsewhere, and a model can
do well on them and still fail on real photos.
"""
import numpy as np
from PIL import Image

from hand_framing import foreground_mask

SEVERITIES = (0, 1, 2, 3, 4)


def turn_matrix(centre, squeeze, shear):
    """3x3 map of (x, y, 1) pixel coordinates imitating a hand turned about its vertical axis: x
    shrinks by squeeze (0: none, 0.5: to half width) towards centre = (x, y), and slants by shear
    (x moves shear pixels per pixel of y below centre's row); y stays."""
    cx, cy = centre
    return np.array([[1 - squeeze, shear, squeeze * cx - shear * cy], [0, 1, 0], [0, 0, 1]])


def _perspective_coefficients(size, scale, angle, shift, tilt, turn=np.eye(3)):
    """PIL's 8 PERSPECTIVE coefficients mapping output pixels to input pixels.

    The forward map applies turn (turn_matrix) first, then scales about the centre, rotates by
    angle (radians), shifts by shift (pixels) and adds a perspective tilt; PIL wants its inverse.
    """
    c = (size - 1) / 2
    to_centre = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], dtype=np.float64)
    rotate_scale = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 0],
                             [scale * np.sin(angle), scale * np.cos(angle), 0], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1]])
    back = np.array([[1, 0, c + shift[0]], [0, 1, c + shift[1]], [0, 0, 1]])
    forward = back @ perspective @ rotate_scale @ to_centre @ turn
    inverse = np.linalg.inv(forward)
    inverse /= inverse[2, 2]
    return tuple(inverse.flatten()[:8])


def _background(size, rng):
    """A plain light background (white to beige, no colour of its own) lit from one side: a linear brightness gradient."""
    red = rng.uniform(0.86, 1.0)
    green = red - rng.uniform(0.0, 0.06)
    tone = np.array([red, green, green - rng.uniform(0.0, 0.1)])
    direction = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    light = 1.0 + rng.uniform(0.0, 0.15) * (np.cos(direction) * x + np.sin(direction) * y)
    return np.clip(tone * light[..., np.newaxis], 0, 1)


def _warp(channel, coefficients):
    """One float channel (h, w) through PIL's PERSPECTIVE map (bilinear; zero outside)."""
    return np.asarray(Image.fromarray(np.float32(channel)).transform(
        channel.shape[::-1], Image.PERSPECTIVE, coefficients, resample=Image.BILINEAR), dtype=np.float64)


def turn_hand(image, squeeze, shear):
    """A uint8 (h, w, 3) photo with its hand turned (turn_matrix about the hand's centre of mass,
    the hand's outline from hand_framing.foreground_mask) on the median colour of the rest."""
    mask = foreground_mask(image)
    rows, columns = np.nonzero(mask)
    forward = turn_matrix((columns.mean(), rows.mean()), squeeze, shear) if rows.size else np.eye(3)
    inverse = np.linalg.inv(forward)
    coefficients = tuple((inverse / inverse[2, 2]).flatten()[:8])
    warped_mask = _warp(mask, coefficients)[..., np.newaxis]
    hand = np.stack([_warp(image[..., k], coefficients) for k in range(3)], axis=-1)
    background = np.broadcast_to(np.median(image[~mask], axis=0), image.shape)
    return np.round(np.clip(warped_mask * hand + (1 - warped_mask) * background, 0, 255)).astype(np.uint8)


def _blur(channel, sigma):
    """channel (h, w) blurred by a Gaussian of sigma pixels (separable; edges repeated)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    rows = np.apply_along_axis(np.convolve, 1, np.pad(channel, radius, mode="edge"), kernel / kernel.sum(), "valid")
    return np.apply_along_axis(np.convolve, 0, rows, kernel / kernel.sum(), mode="valid")


def cast_shadow(picture, mask, offset, darkness, blur):
    """picture (h, w, 3; floats) with the hand's shadow on the wall: mask (h, w; 1 on the hand, 0 off
    it, soft edges allowed) moved by offset = (dx, dy) pixels, blurred by a Gaussian of blur pixels,
    darkens the pixels off the hand by up to darkness (a fraction); pixels on the hand stay as they are."""
    mask = np.asarray(mask, dtype=np.float64)
    h, w = mask.shape
    dx, dy = int(round(offset[0])), int(round(offset[1]))
    moved = np.zeros_like(mask)
    moved[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    shadow = np.clip(_blur(moved, blur), 0, 1) if blur > 0 else moved
    return picture * (1 - darkness * shadow * (1 - mask))[..., np.newaxis]


def _stress_one(image, severity, rng, new_rng):
    """One uint8 (h, w, 3) image changed at severity (0 < severity <= 4); new_rng draws the turned hand
    and the cast shadow, so the other changes keep the draws (and images) they had before those."""
    size = image.shape[0]
    hand = image.astype(np.float64) / 255
    mask = foreground_mask(image).astype(np.float64)
    # Skin tone: darker or lighter hands (the mask keeps the change on the hand).
    hand = hand * (1 + rng.uniform(-0.12, 0.08) * severity * mask[..., np.newaxis])
    angle = np.deg2rad(rng.uniform(-22.5, 22.5) * severity)
    scale = 1 - 0.12 * severity * rng.uniform(0.6, 1.0)
    shift = rng.uniform(-0.08, 0.08, 2) * severity * size
    tilt = rng.uniform(-0.002, 0.002, 2) * severity
    rows, columns = np.nonzero(mask)
    centre = (columns.mean(), rows.mean()) if rows.size else ((size - 1) / 2, (size - 1) / 2)
    turn = turn_matrix(centre, 0.12 * severity * new_rng.uniform(0.3, 1.0),
                       new_rng.uniform(-0.08, 0.08) * severity)
    coefficients = _perspective_coefficients(size, scale, angle, shift, tilt, turn)
    warped_hand = np.stack([_warp(hand[..., k], coefficients) for k in range(3)], axis=-1)
    warped_mask = _warp(mask, coefficients)
    picture = warped_mask[..., np.newaxis] * warped_hand + (1 - warped_mask[..., np.newaxis]) * _background(size, rng)
    direction = new_rng.uniform(0, 2 * np.pi)
    distance = 0.035 * severity * size * new_rng.uniform(0.5, 1.0)
    picture = cast_shadow(picture, warped_mask, (distance * np.cos(direction), distance * np.sin(direction)),
                          0.1 * severity * new_rng.uniform(0.5, 1.0), blur=0.5 + 0.02 * severity * size)
    if severity >= 2 and rng.uniform() < 0.5:
        picture = picture[:, ::-1]
    warm = 0.05 * severity * rng.uniform(0.3, 1.0)
    picture = picture * np.array([1 + warm, 1 + warm / 3, 1 - warm])
    picture = np.clip(picture, 0, 1) ** rng.uniform(1 - 0.1 * severity, 1 + 0.1 * severity)
    return np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)


def stress_images(X, severity, seed=0):
    """A fixed copy of the uint8 images X (m, h, w, 3) changed at severity 0 (none) to 4.

    The same seed and severity always give the same copy, so models can be compared on it.
    """
    X = np.asarray(X)
    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[-1] != 3:
        raise ValueError(f"stress_images expects uint8 images (m, h, w, 3), got {X.dtype} {X.shape}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if severity == 0:
        return X.copy()
    rng, new_rng = np.random.default_rng([seed, severity]), np.random.default_rng([seed, severity, 1])
    return np.stack([_stress_one(image, severity, rng, new_rng) for image in X])


def stress_curve(predict, X, y, seed=0, per_class=False):
    """Accuracy at every severity: {severity: accuracy}. predict maps uint8 images to class ids.
    per_class: {severity: recall_per_class(...)} instead, to see which class breaks first."""
    y = np.asarray(y).reshape(-1)
    predictions = {s: np.asarray(predict(stress_images(X, s, seed))).reshape(-1) for s in SEVERITIES}
    if per_class:
        return {s: recall_per_class(y, predictions[s], int(y.max()) + 1) for s in SEVERITIES}
    return {s: float(np.mean(predictions[s] == y)) for s in SEVERITIES}


def recall_per_class(y_true, y_pred, classes):
    """Recall of each class 0 .. classes - 1: the share of its examples predicted as it, float (classes,);
    nan for a class with no example. y_true, y_pred: class ids ((m,), (m, 1) or (1, m) as SIGNS'
    labels), or (m, classes) one-hot or probability rows (m > 1)."""
    y_true, y_pred = (y.argmax(axis=-1) if y.ndim == 2 and min(y.shape) > 1 else y.reshape(-1).astype(int)
                      for y in (np.asarray(y_true), np.asarray(y_pred)))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"recall_per_class: {y_true.size} labels but {y_pred.size} predictions")
    counts = np.bincount(y_true, minlength=classes)[:classes]
    right = np.bincount(y_true[y_true == y_pred], minlength=classes)[:classes]
    return np.where(counts > 0, right / np.maximum(counts, 1), np.nan)


def plot_recall_per_class(recalls, class_names):
    """Heat map of recall per class (rows) for each column of recalls ({column name: recall per class},
    e.g. the test photos and each stress severity): which class breaks first. Returns the figure."""
    import matplotlib.pyplot as plt  # here: the stress set itself needs numpy and Pillow only
    table = np.array(list(recalls.values())).T
    fig, ax = plt.subplots(figsize=(1.1 * len(recalls) + 1.5, 0.45 * len(class_names) + 1))
    ax.imshow(table, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    for i, j in np.ndindex(table.shape):
        ax.text(j, i, f"{table[i, j]:.0%}", ha="center", va="center", fontsize=8)
    ax.set(xticks=range(len(recalls)), xticklabels=list(recalls), yticks=range(len(class_names)),
           yticklabels=[f"sign {name}" for name in class_names], title="recall per sign")
    fig.tight_layout()
    return fig
