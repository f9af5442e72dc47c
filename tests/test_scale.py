"""Resolution normalisation (data/scale.py): FOV diameter, the auto factor, resampling, --scale."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from data.fov import generate_fov_mask
from data.scale import (
    KNOWN_FOV_DIAMETERS,
    FovBand,
    FovFit,
    fit_fov,
    fov_diameter,
    image_factor,
    median_fov_diameter,
    parse_scale,
    prediction_factors,
    resize_nearest,
    scale_factor,
    scale_text,
    training_fov_band,
    training_fov_diameter,
    upsample_sample,
    weights_config,
    weights_fov_band,
)
from tests.helpers import DRIVE_WEIGHTS, run_python
from utils.errors import UserError


def disc(shape, centre, diameter, keep_rows=None):
    """bool mask of a disc; rows outside `keep_rows` = (first, last) cut off (a wide sensor)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    mask = (xx + 0.5 - centre[1]) ** 2 + (yy + 0.5 - centre[0]) ** 2 <= (diameter / 2) ** 2
    if keep_rows is not None:
        mask[: keep_rows[0]] = False
        mask[keep_rows[1] + 1 :] = False
    return mask


def photograph(mask, surround=0, seed=0):
    """A fundus-like uint8 (H, W, 3) image: reddish, darker at the rim, noisy; `surround` grey."""
    rng = np.random.default_rng(seed)
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rim = 1 - 0.5 * np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
    colour = np.stack([170 * rim, 80 * rim, 40 * rim], axis=-1) + rng.normal(0, 4, (h, w, 3))
    image = np.where(mask[..., None], colour, surround + rng.normal(0, 2, (h, w, 3)))
    return np.clip(image, 0, 255).astype(np.uint8)


def test_fov_diameter_of_cut_off_discs():
    """Whole discs and discs cut off at the top and bottom: within 2 % of the true diameter."""
    for shape, centre, diameter, keep in [
        ((600, 620), (300, 310), 540, None),
        ((600, 620), (290, 330), 400, None),
        ((1400, 2100), (700, 1050), 1800, (250, 1150)),  # a 3:2 sensor, top and bottom cut
        ((605, 700), (302, 350), 650, (12, 592)),  # STARE-like
    ]:
        estimate = fov_diameter(disc(shape, centre, diameter, keep))
        assert estimate == pytest.approx(diameter, rel=0.02), (shape, diameter, estimate)


def ellipse(shape, centre, width, height, keep_rows=None):
    """bool mask of an ellipse with axes along x and y; rows outside `keep_rows` cut off."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    mask = ((xx + 0.5 - centre[1]) / (width / 2)) ** 2 + (
        (yy + 0.5 - centre[0]) / (height / 2)
    ) ** 2 <= 1
    if keep_rows is not None:
        mask[: keep_rows[0]] = False
        mask[keep_rows[1] + 1 :] = False
    return mask


def test_fit_fov_of_stretched_fields_of_view():
    """Non-square pixels: an ellipse's width and height within 1 %, the diameter the equal-area
    circle's; a circle 2 % taller than wide (STARE's) stays a circle; 1.8:1 is not found."""
    for shape, centre, width, height, keep in [
        ((600, 800), (300, 400), 720, 540, None),  # a circle stored 4:3 wider
        ((700, 600), (350, 300), 450, 600, None),  # taller
        ((500, 900), (250, 450), 800, 600, (40, 460)),  # wider, top and bottom cut
    ]:
        fit = fit_fov(ellipse(shape, centre, width, height, keep))
        assert (fit.width, fit.height) == (
            pytest.approx(width, rel=0.01),
            pytest.approx(height, rel=0.01),
        )
        assert (fit.cx, fit.cy) == (
            pytest.approx(centre[1], abs=1),
            pytest.approx(centre[0], abs=1),
        )
        assert fov_diameter(ellipse(shape, centre, width, height, keep)) == fit.diameter
        assert fit.diameter == pytest.approx(np.sqrt(width * height), rel=0.01)
    fit = fit_fov(ellipse((700, 700), (350, 350), 640, 653))
    assert fit.width == fit.height and fit.aspect == 1.0
    assert fit.diameter == pytest.approx(np.sqrt(640 * 653), rel=0.01)
    assert fit_fov(ellipse((500, 900), (250, 450), 810, 450)) is None
    round_mask = disc((600, 620), (300, 310), 540)
    circle = fit_fov(round_mask)
    assert isinstance(circle, FovFit) and circle.diameter == fov_diameter(round_mask)


@pytest.mark.parametrize("surround", [0, 35])
@pytest.mark.parametrize("jpeg", [False, True])
@pytest.mark.parametrize("grey", [False, True])
def test_fov_diameter_of_generated_masks(surround, jpeg, grey):
    """Dark and slightly lit surrounds, JPEG artefacts, grey images, cut-off fields of view."""
    mask = disc((700, 1050), (350, 525), 820, (60, 640))
    image = photograph(mask, surround)
    if grey:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=60)
        image = np.asarray(Image.open(buffer).convert("RGB"))
    assert fov_diameter(generate_fov_mask(image)) == pytest.approx(820, rel=0.02)


def test_no_field_of_view_warns_with_factor_1(capsys):
    assert fov_diameter(np.zeros((100, 100), bool)) is None
    assert fov_diameter(np.ones((100, 100), bool)) is None  # no edge inside the image
    assert image_factor("auto", np.ones((100, 100), bool), 538.67, "photo.jpg") == 1.0
    err = capsys.readouterr().err
    assert "photo.jpg" in err and "no field of view" in err and "factor 1" in err


def test_scale_factor_rule():
    assert scale_factor(1078.0, 539.0) == 0.5
    assert scale_factor(2156.0, 539.0) == 0.25
    assert scale_factor(650.0, 538.67) == 1.0  # STARE: inside the unit band
    assert scale_factor(None, 538.67) == 1.0
    assert image_factor(0.5, None, 538.67, "x") == 0.5  # a given number is used as it is
    assert prediction_factors("auto", 1.0) == (1.0,)
    assert prediction_factors("auto", 0.25) == (0.25, pytest.approx(0.25 * 2**0.5))
    assert prediction_factors("auto", 0.8) == (0.8, 1.0)
    assert prediction_factors("auto", 2.0) == (2.0,)
    assert prediction_factors(0.5, 0.5) == (0.5,)


def test_scale_factor_in_a_band():
    """Weights trained on FOV diameters 538-900 px: a larger field of view is shrunk to 900, a
    smaller one enlarged to 538, one in between left as it is; the unit band still applies."""
    band = FovBand(538.0, 900.0)
    assert scale_factor(1800.0, band) == 0.5  # shrunk to the high end, not to 538
    assert scale_factor(3600.0, band) == 0.25
    assert scale_factor(700.0, band) == 1.0  # inside the band
    assert scale_factor(1100.0, band) == 1.0  # 900 / 1100 = 0.82: inside the unit band
    assert scale_factor(269.0, band) == 2.0  # enlarged to the low end
    assert scale_factor(None, band) == 1.0
    assert scale_factor(1800.0, FovBand(538.0, 538.0)) == scale_factor(1800.0, 538.0)
    # Weights of a band have seen the range: one prediction; one diameter: two, as before.
    assert prediction_factors("auto", 0.5, band) == (0.5,)
    assert prediction_factors("auto", 0.5, 538.0) == (0.5, pytest.approx(0.5 * 2**0.5))
    assert prediction_factors("auto", 0.5, FovBand(538.0, 538.0)) == (
        0.5,
        pytest.approx(0.5 * 2**0.5),
    )
    assert str(band) == "538.0-900.0 px" and str(FovBand(538.0, 538.0)) == "538.0 px"
    with pytest.raises(UserError, match="must have 0 < low <= high"):
        FovBand(900.0, 538.0)


def test_training_band_from_configs():
    cfg = {"scale": {"train_fov_diameter": 538.29, "max_fov_diameter": 900.0}}
    assert training_fov_band(cfg) == FovBand(538.29, 900.0)
    assert training_fov_band({"scale": {"train_fov_diameter": 612.5}}) == FovBand(612.5, 612.5)
    assert training_fov_band({"dataset": {"name": "synthetic"}}) is None
    assert training_fov_band({}) == FovBand(
        KNOWN_FOV_DIAMETERS["drive"], KNOWN_FOV_DIAMETERS["drive"]
    )


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "nan", "inf", ""])
def test_parse_scale_refuses(bad):
    with pytest.raises(UserError, match="--scale must be 'auto', 'vessels', a positive number"):
        parse_scale(bad)


def test_parse_scale_accepts():
    assert parse_scale("auto") == "auto" and parse_scale("AUTO") == "auto"
    assert parse_scale("1") == 1.0 and parse_scale("0.35") == 0.35
    assert parse_scale("538px") == FovBand(538.0, 538.0)
    assert parse_scale(" 538-900PX ") == FovBand(538.0, 900.0)
    for bad in ("px", "0px", "900-538px", "a-bpx", "1-2-3px"):
        with pytest.raises(UserError, match="NNNpx or LOW-HIGHpx"):
            parse_scale(bad)


def test_scale_given_as_a_diameter_replaces_the_weights_band():
    """--scale 538px: every FOV brought to 538 px whatever band the weights trained at; a
    photograph shrunk to one diameter is also predicted at SECOND_SCALE times its factor."""
    fov = np.zeros((1000, 1000), bool)
    yy, xx = np.mgrid[:1000, :1000]
    fov[(yy - 500) ** 2 + (xx - 500) ** 2 < 450**2] = True
    diameter = fov_diameter(fov)
    band = FovBand(538.29, 1200.0)
    assert image_factor("auto", fov, band, "x") == 1.0  # inside the weights' band
    given = parse_scale("538px")
    factor = image_factor(given, fov, band, "x")
    assert factor == pytest.approx(538.0 / diameter)
    assert len(prediction_factors(given, factor, band)) == 2
    assert prediction_factors(parse_scale("500-1000px"), 1.0, band) == (1.0,)
    assert weights_fov_band(DRIVE_WEIGHTS, given) is given
    for text in ("auto", 0.5, "538px", "500-1000px"):  # as metrics.json records it, read back
        assert scale_text(parse_scale(text)) == text


@pytest.mark.parametrize("bad", ["0", "-2", "big"])
def test_bad_scale_flag_is_one_sentence_and_status_2(tmp_path, bad):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    for tool in (
        ["predict.py", "--weights", str(DRIVE_WEIGHTS), str(image)],
        ["evaluate.py", "--config", "configs/demo.yaml", "--weights", str(DRIVE_WEIGHTS)],
    ):
        result = run_python([*tool, "--out", str(tmp_path / "out"), f"--scale={bad}"])
        assert result.returncode == 2, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert lines == [
            f"error: --scale must be 'auto', 'vessels', a positive number (1 = off) or a FOV "
            f"diameter such as 538px, got '{bad}'"
        ]


def test_training_diameter_from_configs(tmp_path):
    assert training_fov_diameter({"scale": {"train_fov_diameter": 612.5}}) == 612.5
    assert training_fov_diameter({"dataset": {"name": "stare"}}) == KNOWN_FOV_DIAMETERS["stare"]
    assert training_fov_diameter({}) == KNOWN_FOV_DIAMETERS["drive"]  # older files: DRIVE's
    # An older run of a dataset of unknown scale (the demo's synthetic set) is left at factor 1.
    assert training_fov_diameter({"dataset": {"name": "synthetic"}}) is None
    assert image_factor("auto", np.ones((64, 64), bool), None, "x.png") == 1.0
    cfg = weights_config(DRIVE_WEIGHTS)
    assert cfg["scale"]["train_fov_diameter"] == KNOWN_FOV_DIAMETERS["drive"]
    assert weights_config(tmp_path / "lonely.keras") == {}


def test_weights_without_a_config_warn_that_drives_scale_is_assumed(tmp_path):
    """A best.keras copied out of its run folder: --scale auto says it assumes DRIVE's diameter;
    with the run's config.yaml beside it, or a number given, nothing is said."""
    said = []
    lonely = tmp_path / "best.keras"
    band = weights_fov_band(lonely, "auto", warn=said.append)
    assert band == FovBand(KNOWN_FOV_DIAMETERS["drive"], KNOWN_FOV_DIAMETERS["drive"])
    assert len(said) == 1 and "best.yaml or config.yaml" in said[0] and "538 px" in said[0]
    assert weights_fov_band(lonely, 0.5, warn=said.append) == band and len(said) == 1
    (tmp_path / "config.yaml").write_text(
        "scale: {train_fov_diameter: 538.29, max_fov_diameter: 1200}\n"
    )
    assert weights_fov_band(lonely, "auto", warn=said.append) == FovBand(538.29, 1200.0)
    assert len(said) == 1
    assert weights_fov_band(DRIVE_WEIGHTS, "auto", warn=said.append) is not None and len(said) == 1


def test_segment_resamples_back_and_tiles(monkeypatch):
    """A factor gives an (H, W) map; tiles give what the whole image gives for a local network."""
    import inference.segment as ev

    class Local:  # a per-pixel "network": tiling must not change it
        def predict(self, batch):
            return batch.mean(axis=-1, keepdims=True)

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)
    whole = ev.segment(Local(), image)
    assert ev.segment(Local(), image, factor=0.5).shape == (300, 410)
    monkeypatch.setattr(ev, "MAX_WHOLE_PIXELS", 100 * 100)
    monkeypatch.setattr(ev, "TILE", 128)
    monkeypatch.setattr(ev, "TILE_MARGIN", 16)
    np.testing.assert_array_equal(ev.segment(Local(), image), whole)


def test_segment_runs_the_hook_around_the_network_and_averages_the_scales():
    """during_network starts after every resampling and its join ends after the last prediction;
    two factors give the mean of the two maps, each resampled back."""
    from data.scale import resize_image, resize_probability, scaled_shape
    from inference.segment import segment

    events = []

    class Local:
        def predict(self, batch):
            events.append(("network", batch.shape[1:3]))
            return batch.mean(axis=-1, keepdims=True)

    def hook():
        events.append("start")
        return lambda: events.append("join")

    image = np.random.default_rng(2).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    prob = segment(Local(), image, factor=(0.5, 1.0), during_network=hook)
    assert events == ["start", ("network", (64, 48)), ("network", (120, 96)), "join"]
    half = resize_image(image, scaled_shape((120, 90), 0.5))
    expected = resize_probability(segment(Local(), half), (120, 90)) + segment(Local(), image)
    np.testing.assert_allclose(prob, expected / 2, rtol=1e-6)


def test_segment_mirror_averages_the_map_of_the_mirror_image(monkeypatch):
    """A "network" that answers each pixel's column position (0 at the left edge, 1 at the right)
    gives 0.5 everywhere once averaged with its mirror image's map, mirrored back; one whose
    answer depends only on the pixel is unchanged by the mirror, whole or in tiles."""
    import inference.segment as seg

    class Ramp:
        def predict(self, batch):
            width = batch.shape[2]
            ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, None, :, None]
            return np.broadcast_to(ramp, batch.shape[:3] + (1,))

    class Local:
        def predict(self, batch):
            return batch.mean(axis=-1, keepdims=True)

    image = np.random.default_rng(3).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    plain = seg.segment(Ramp(), image)
    assert plain[0, 0] == 0.0 and plain[0, -1] == 1.0
    np.testing.assert_allclose(seg.segment(Ramp(), image, mirror=True), 0.5, atol=1e-6)
    times = {}
    np.testing.assert_allclose(
        seg.segment(Local(), image, mirror=True, times=times),
        seg.segment(Local(), image),
        atol=1e-6,
    )
    assert times["network"] > 0
    monkeypatch.setattr(seg, "MAX_WHOLE_PIXELS", 16 * 16)
    monkeypatch.setattr(seg, "TILE", 32)
    monkeypatch.setattr(seg, "TILE_MARGIN", 8)
    tiled = seg.segment(Local(), image, factor=(0.5, 1.0), mirror=True)
    np.testing.assert_allclose(tiled, seg.segment(Local(), image, factor=(0.5, 1.0)), atol=1e-6)


def test_resize_nearest_keeps_labels():
    label = np.array([[0, 1], [1, 0]], np.uint8)
    np.testing.assert_array_equal(
        resize_nearest(label, (4, 4)), np.kron(label, np.ones((2, 2), np.uint8))
    )


@pytest.mark.slow
@pytest.mark.realdata
def test_fov_diameter_on_drive_masks(real_data_root):
    """DRIVE's 40 masks: within 2 % of their horizontal extent and of the area's diameter; the
    recorded DRIVE diameter is the training masks' median; auto is exactly 1 on every image."""
    from data.readers import read_drive

    train, test = read_drive(real_data_root)
    for sample in train + test:
        estimate = fov_diameter(sample.mask)
        width = sample.mask.sum(axis=1).max()
        area = 2 * np.sqrt(sample.mask.sum() / np.pi)
        assert estimate == pytest.approx(width, rel=0.02), sample.name
        assert estimate == pytest.approx(area, rel=0.02), sample.name
    assert median_fov_diameter([s.mask for s in train]) == KNOWN_FOV_DIAMETERS["drive"]
    diameter = training_fov_diameter(weights_config(DRIVE_WEIGHTS))
    for sample in train + test:
        assert image_factor("auto", sample.mask, diameter, sample.name) == 1.0
        assert image_factor("auto", generate_fov_mask(sample.image), diameter, sample.name) == 1.0


@pytest.mark.realdata
@pytest.mark.slow
def test_upsampled_drive_keeps_its_f1_with_auto(real_data_root):
    """DRIVE test images upsampled x2 and x4 (a high-resolution camera's stand-in): with --scale
    auto, FOV F1 within 0.01 of the native images' (3 images, the default engine)."""
    from data.readers import read_drive
    from inference.engines import make_predictor
    from inference.segment import segment
    from metrics import binary_scores

    _, test = read_drive(real_data_root)
    samples = test[:3]
    predictor = make_predictor(DRIVE_WEIGHTS)
    diameter = training_fov_diameter(weights_config(DRIVE_WEIGHTS))

    def mean_f1(items, scale):
        scores = []
        for s in items:
            factor = image_factor(scale, s.mask, diameter, s.name)
            prob = segment(predictor, s.image, factor=prediction_factors(scale, factor))
            scores.append(binary_scores(prob > 0.5, s.label, s.mask)["f1"])
        return float(np.mean(scores))

    native = mean_f1(samples, "auto")
    for times in (2, 4):
        upsampled = [upsample_sample(s, times) for s in samples]
        assert mean_f1(upsampled, "auto") == pytest.approx(native, abs=0.01), times


def _bars(widths_and_lengths, shape=(300, 400)):
    """bool map of horizontal bars: [(width px, length px)], 40 px apart."""
    vessels = np.zeros(shape, bool)
    for k, (width, length) in enumerate(widths_and_lengths):
        top = 20 + 40 * k
        vessels[top : top + width, 20 : 20 + length] = True
    return vessels


def test_vessel_calibre_is_the_main_vessels_width():
    from data.scale import vessel_calibre

    vessels = _bars([(7, 200), (3, 80)])
    assert vessel_calibre(vessels) == pytest.approx(7.0, abs=0.6)
    fov = np.zeros_like(vessels)
    fov[:40] = True  # only the wide bar inside
    assert vessel_calibre(vessels, fov) == pytest.approx(7.0, abs=0.6)
    assert vessel_calibre(_bars([(3, 100)])) is None  # 300 px: too few to say


def test_vessel_calibre_range_by_dataset():
    from data.samples import Sample
    from data.scale import vessel_calibre_range

    def sample(source, width):
        label = _bars([(width, 300), (width, 300)]).astype(np.uint8)
        image = np.zeros((*label.shape, 3), np.uint8)
        return Sample(source, image, label, np.ones_like(label, bool), source=source)

    samples = [sample("drive/21", 5), sample("drive/22", 9), sample("chase_db1/x", 13)]
    low, high = vessel_calibre_range(samples)  # DRIVE's median of 5 and 9, CHASE_DB1's 13
    assert low == pytest.approx(7.0, abs=0.6) and high == pytest.approx(13.0, abs=0.6)
    maps = [_bars([(9, 300)])] * 3  # predicted maps instead of the labels
    low, high = vessel_calibre_range(samples, maps)
    assert low == pytest.approx(high) == pytest.approx(9.0, abs=0.6)


def test_vessel_factor_brings_main_vessels_outside_the_range_to_its_middle():
    from data.scale import vessel_factor

    vessels = _bars([(15, 300), (15, 300), (5, 200)], shape=(200, 400))
    fov = np.ones_like(vessels)
    # 15 px wide, the range 4-9 px: to its geometric middle, 6 px (the nearer edge would be 9).
    factor = vessel_factor(vessels, fov, 1.0, (4.0, 9.0))
    assert factor == pytest.approx(6.0 / 15.0, rel=0.06)
    # Too narrow: never enlarged, however far below the range (15 px against 20-45 px).
    assert vessel_factor(vessels, fov, 1.0, (20.0, 45.0)) == 1.0
    assert vessel_factor(vessels, fov, 0.8, (40.0, 60.0)) == 0.8
    assert vessel_factor(vessels, fov, 1.0, (6.0, 15.5)) == 1.0  # inside: no second pass
    # Predicted at 0.5, the same map's vessels are 7-8 px at the network's scale: in range.
    assert vessel_factor(vessels, fov, 0.5, (6.0, 8.0)) == 0.5
    # Within VESSEL_TOLERANCE above the range's top: no second pass, though its middle is far.
    assert vessel_factor(vessels, fov, 1.0, (4.0, 14.2)) == 1.0
    assert vessel_factor(vessels, fov, 1.0, (4.0, 12.0)) == pytest.approx(
        np.sqrt(48.0) / 15.0, rel=0.06
    )  # 15 px is 25 % above 12
    assert vessel_factor(np.zeros_like(vessels), fov, 0.7, (6.0, 8.0)) == 0.7


def test_scale_vessels_reads_the_weights_range(tmp_path):
    from data.scale import weights_vessel_calibre

    assert parse_scale("Vessels") == "vessels"
    low, high = weights_vessel_calibre("weights/sa_unetv2_fundus.keras")
    assert 4.0 < low < high < 20.0
    (tmp_path / "old.yaml").write_text("dataset:\n  name: drive\n", encoding="utf-8")
    with pytest.raises(UserError, match="--scale vessels needs"):
        weights_vessel_calibre(tmp_path / "old.keras")


class _RedChannel:
    """A stand-in predictor: the vessel probability is the red channel (so the map is the image)."""

    name, multiple = "red", 8

    def predict(self, batch):
        return batch[..., :1]


def test_segment_by_vessels_predicts_again_at_the_vessels_scale():
    from inference.segment import segment_by_vessels

    vessels = _bars([(15, 300), (15, 300), (5, 200)], shape=(200, 400))
    image = np.repeat((vessels * 255).astype(np.uint8)[..., None], 3, axis=2)
    fov = np.ones_like(vessels)
    prob, factors = segment_by_vessels(_RedChannel(), image, fov, (1.0,), 0.5, (6.0, 8.0))
    middle = np.sqrt(6.0 * 8.0)
    assert factors[0] == pytest.approx(middle / 15.0, rel=0.06) and prob.shape == vessels.shape
    assert ((prob > 0.5) == vessels).mean() > 0.97  # resampled there and back
    prob, factors = segment_by_vessels(_RedChannel(), image, fov, (1.0,), 0.5, (6.0, 16.0))
    assert factors == (1.0,) and np.array_equal(prob > 0.5, vessels)
