"""Tests of data/av.py's predicted maps: A/V probabilities to classes, and the coloured overlay."""

from __future__ import annotations

import numpy as np
import pytest

from data.av import ARTERY, BACKGROUND, COLOURS, CROSSING, UNCERTAIN, VEIN, av_classes, av_overlay


def test_av_classes_by_hand():
    # (p_vessel, p_artery, p_vein) of four pixels: a vein, an artery by a tie, background at the
    # threshold itself (a vessel is p > threshold), an artery.
    probs = np.array([[[0.9, 0.2, 0.7], [0.6, 0.4, 0.4]], [[0.5, 0.9, 0.1], [0.51, 0.8, 0.3]]])
    np.testing.assert_array_equal(av_classes(probs), [[VEIN, ARTERY], [BACKGROUND, ARTERY]])
    np.testing.assert_array_equal(av_classes(probs, 0.55), [[VEIN, ARTERY], [BACKGROUND, 0]])
    assert av_classes(probs).dtype == np.uint8
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        av_classes(probs[..., :1])


def test_av_overlay_paints_each_class_in_its_colour():
    image = np.full((2, 3, 3), 77, np.uint8)
    classes = np.array([[BACKGROUND, ARTERY, VEIN], [CROSSING, UNCERTAIN, BACKGROUND]], np.uint8)
    out = av_overlay(image, classes)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0, 1], (255, 0, 0))  # artery red
    np.testing.assert_array_equal(out[0, 2], (0, 0, 255))  # vein blue
    np.testing.assert_array_equal(out[1, 0], COLOURS[CROSSING])
    np.testing.assert_array_equal(out[1, 1], COLOURS[UNCERTAIN])
    np.testing.assert_array_equal(out[0, 0], (77, 77, 77))  # the photograph elsewhere
    assert image[0, 1, 0] == 77  # the input is not painted over
    with pytest.raises(ValueError, match="differ in size"):
        av_overlay(image, classes[:1])
