"""The pictures written for a segmented image: probability and binary maps, overlays."""

from __future__ import annotations

import numpy as np

# Overlay colours (RGB): true positives, false positives, false negatives.
TP_COLOUR = (0, 200, 0)
FP_COLOUR = (255, 40, 40)
FN_COLOUR = (40, 120, 255)
VESSEL_COLOUR = (0, 230, 0)


def probability_png(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities -> uint8 grey image 0..255."""
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


def overlay_errors(image: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Fundus image with true positives, false positives and false negatives in three colours."""
    out = (image.astype(np.float32) * 0.55).astype(np.uint8)
    pred, label = pred.astype(bool), label.astype(bool)
    out[pred & label] = TP_COLOUR
    out[pred & ~label] = FP_COLOUR
    out[~pred & label] = FN_COLOUR
    return out


def overlay_vessels(image: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Fundus image with the predicted vessels drawn in one colour."""
    out = image.copy()
    out[pred.astype(bool)] = VESSEL_COLOUR
    return out
