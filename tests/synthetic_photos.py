"""Synthetic hand photos: a skin-coloured ellipse (and forearm) on a plain background."""
import numpy as np

SKIN_TONES = {"light": (224, 172, 140), "medium": (176, 120, 84), "dark": (110, 70, 48)}
BACKGROUNDS = {"white": (240, 240, 238), "grey": (190, 192, 195), "beige": (232, 220, 200)}


def photo(height, width, background, skin, centre, radii, forearm=True, vignette=0.0, seed=0):
    """uint8 (height, width, 3): a plain background with a skin ellipse (and its forearm)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.empty((height, width, 3))
    image[...] = background
    if vignette:
        r = np.hypot((y - height / 2) / height, (x - width / 2) / width)
        image *= (1 - vignette * np.clip(r - 0.3, 0, None) / 0.4)[..., np.newaxis]
    hand = ((y - centre[0]) / radii[0]) ** 2 + ((x - centre[1]) / radii[1]) ** 2 <= 1
    if forearm:
        hand |= (y >= centre[0]) & (np.abs(x - centre[1]) <= radii[1] * 0.5)
    shading = 0.85 + 0.15 * (x - x.min()) / max(width - 1, 1)  # a hand is not one flat colour
    image[hand] = np.asarray(skin) * shading[hand][:, np.newaxis]
    image += rng.normal(0, 2.0, image.shape)  # sensor noise
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
