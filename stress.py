# Generated from resnet_course/stress.py (python -m resnet_course.learner_files).
"""A harder stand-in for "photos taken elsewhere": held-out images changed in ways training never uses.

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
- every other image is mirrored from severity 2 on (left hands);
- colour temperature (warm light), a gamma curve, and a darker or lighter skin tone (none of which
  training uses: its light changes are brightness and contrast only).

It is a stand-in, not proof: the changes are guesses at what differs elsewhere, and a model can
do well on them and still fail on real photos.
"""
import numpy as np
from PIL import Image

from hand_framing import foreground_mask

SEVERITIES = (0, 1, 2, 3, 4)


def _perspective_coefficients(size, scale, angle, shift, tilt):
    """PIL's 8 PERSPECTIVE coefficients mapping output pixels to input pixels.

    The forward map scales about the centre, rotates by angle (radians), shifts by shift (pixels)
    and adds a perspective tilt; PIL wants its inverse.
    """
    c = (size - 1) / 2
    to_centre = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], dtype=np.float64)
    rotate_scale = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 0],
                             [scale * np.sin(angle), scale * np.cos(angle), 0], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [tilt[0], tilt[1], 1]])
    back = np.array([[1, 0, c + shift[0]], [0, 1, c + shift[1]], [0, 0, 1]])
    forward = back @ perspective @ rotate_scale @ to_centre
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


def _stress_one(image, severity, rng):
    """One uint8 (h, w, 3) image changed at the given severity (0 < severity <= 4)."""
    size = image.shape[0]
    hand = image.astype(np.float64) / 255
    mask = foreground_mask(image).astype(np.float64)
    # Skin tone: darker or lighter hands (the mask keeps the change on the hand).
    hand = hand * (1 + rng.uniform(-0.12, 0.08) * severity * mask[..., np.newaxis])
    angle = np.deg2rad(rng.uniform(-22.5, 22.5) * severity)
    scale = 1 - 0.12 * severity * rng.uniform(0.6, 1.0)
    shift = rng.uniform(-0.08, 0.08, 2) * severity * size
    tilt = rng.uniform(-0.002, 0.002, 2) * severity
    coefficients = _perspective_coefficients(size, scale, angle, shift, tilt)

    def warp(channel):  # one float32 channel through the projective map (PIL's "F" images)
        return np.asarray(Image.fromarray(np.float32(channel)).transform(
            (size, size), Image.PERSPECTIVE, coefficients, resample=Image.BILINEAR), dtype=np.float64)

    warped_hand = np.stack([warp(hand[..., k]) for k in range(3)], axis=-1)
    warped_mask = warp(mask)[..., np.newaxis]
    picture = warped_mask * warped_hand + (1 - warped_mask) * _background(size, rng)
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
    rng = np.random.default_rng([seed, severity])
    return np.stack([_stress_one(image, severity, rng) for image in X])


def stress_curve(predict, X, y, seed=0):
    """Accuracy at every severity: {severity: accuracy}. predict maps uint8 images to class ids."""
    y = np.asarray(y).reshape(-1)
    return {s: float(np.mean(np.asarray(predict(stress_images(X, s, seed))) == y)) for s in SEVERITIES}
