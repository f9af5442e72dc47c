"""Models: exact parameter counts, shapes, .keras round trip in safe mode, a fit step per backend."""

from __future__ import annotations

import textwrap

import keras
import numpy as np
import pytest

from models import AV_MODEL_NAMES, MODEL_NAMES, build_model, is_av_model, load_model
from tests.helpers import run_on_backend

# The paper's table (docs/paper.md sections 1 and 2).
PARAMS = {
    "sa_unetv2": 260_521,
    "sa_unet": 537_299,
    "unet": 8_636_385,
    "attention_unet": 8_649_828,
    "sa_unetv2_av": 260_555,  # the vessel network's + two head channels of 16 weights and a bias
}


def channels(name: str) -> int:
    """The output channels of model `name`: 3 for the A/V network (vessel, artery, vein), else 1."""
    return 3 if name in AV_MODEL_NAMES else 1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_counts(name):
    model = build_model(name)
    assert model.count_params() == PARAMS[name]
    assert model.input_shape == (None, None, None, 3)
    assert model.output_shape == (None, None, None, channels(name))
    assert is_av_model(model) == (name == "sa_unetv2_av")


def test_sa_unetv2_structure():
    model = build_model("sa_unetv2")
    names = [layer.__class__.__name__ for layer in model.layers]
    assert names.count("CrossScaleSpatialAttention") == 3
    assert names.count("SpatialAttention") == 1
    assert names.count("DropBlock2D") == names.count("Conv2D") - 1  # every 3x3 conv, not the head
    assert names.count("GroupNormalization") == 14  # 6 encoder + 2 bottleneck + 6 decoder steps
    assert "Lambda" not in names
    gn = model.get_layer("enc1_step1_gn")
    assert gn.groups == 8 and gn.epsilon == 1e-3
    drop = model.get_layer("enc1_step1_dropblock")
    assert drop.rate == 0.15 and drop.block_size == 7
    widths = [
        model.get_layer(f"{s}_step1_conv").filters for s in ("enc1", "enc2", "enc3", "bottleneck")
    ]
    assert widths == [16, 32, 48, 64]


def test_attention_unet_structure():
    model = build_model("attention_unet")
    names = [layer.__class__.__name__ for layer in model.layers]
    assert "Lambda" not in names
    assert names.count("Multiply") == 3 and names.count("Add") == 3  # one gate per skip
    assert names.count("GroupNormalization") == 14  # 6 encoder + 2 bottleneck + 6 decoder steps
    widths = [
        model.get_layer(f"{s}_step1_conv").filters for s in ("enc1", "enc2", "enc3", "bottleneck")
    ]
    assert widths == [64, 128, 256, 512]
    for level, filters in ((3, 256), (2, 128), (1, 64)):
        assert model.get_layer(f"dec{level}_up").filters == filters
        assert model.get_layer(f"dec{level}_up_silu").get_config()["activation"] == "silu"
        theta, phi = (model.get_layer(f"dec{level}_gate_{n}") for n in ("theta", "phi"))
        assert theta.filters == phi.filters == filters // 2
        assert theta.kernel_size == phi.kernel_size == (1, 1) and theta.use_bias and phi.use_bias
        psi = model.get_layer(f"dec{level}_gate_psi")
        assert psi.filters == 1 and psi.use_bias and psi.get_config()["activation"] == "sigmoid"
        assert model.get_layer(f"dec{level}_step2_conv").filters == filters


def test_attention_gate_scales_the_skip_by_its_map():
    """gated = skip * sigmoid(psi(relu(theta(skip) + phi(up)))), checked against NumPy."""
    model = build_model("attention_unet", start_neurons=8, dropblock_rate=0.0)
    x = np.random.default_rng(2).uniform(size=(1, 32, 40, 3)).astype("float32")
    probe = keras.Model(
        model.input,
        [model.get_layer(n).output for n in ("enc1_step2_silu", "dec1_up_silu", "dec1_gate_gated")],
    )
    skip, up, gated = (keras.ops.convert_to_numpy(t) for t in probe(x))

    def conv1x1(name, t):
        kernel, bias = model.get_layer(name).get_weights()
        return t @ kernel[0, 0] + bias

    inner = np.maximum(conv1x1("dec1_gate_theta", skip) + conv1x1("dec1_gate_phi", up), 0.0)
    alpha = 1.0 / (1.0 + np.exp(-conv1x1("dec1_gate_psi", inner)))
    assert alpha.shape == (1, 32, 40, 1)
    np.testing.assert_allclose(gated, skip * alpha, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_builds_and_predicts_on_small_inputs(name):
    # 32 x 48: U-Net's four down-samplings need multiples of 16.
    model = build_model(name, input_shape=(32, 48, 3))
    x = np.random.default_rng(3).uniform(size=(1, 32, 48, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=True))
    assert y.shape == (1, 32, 48, channels(name)) and np.isfinite(y).all()


@pytest.mark.parametrize(
    "name,multiple",
    [("sa_unetv2", 8), ("sa_unet", 8), ("unet", 16), ("attention_unet", 8), ("sa_unetv2_av", 8)],
)
def test_input_multiple_is_two_to_the_down_samplings(name, multiple):
    from models.common import input_multiple

    assert input_multiple(build_model(name)) == multiple


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_segment_pads_to_the_model_multiple(name):
    # 40 x 56 and a pad shape of 40 x 56: multiples of 8, not of 16 (U-Net's four down-samplings).
    from inference.engines import make_predictor
    from inference.segment import segment

    predictor = make_predictor(build_model(name, start_neurons=8), "keras")
    image = np.random.default_rng(4).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    shape = (37, 53) if channels(name) == 1 else (37, 53, channels(name))
    whole = segment(predictor, image)
    assert whole.shape == shape and np.isfinite(whole).all()
    assert segment(predictor, image, pad_shape=(40, 56)).shape == shape
    assert segment(predictor, image, factor=1.37).shape == shape


def test_training_arrays_are_padded_to_the_model_multiple():
    from training.trainer import pad_to_model

    x = np.ones((2, 40, 56, 3), dtype="float32")
    y = np.ones((2, 40, 56, 1), dtype="float32")
    unet = build_model("unet", start_neurons=8)
    px, py, vx, vy = pad_to_model(unet, x, y, x[:1], y[:1])
    assert px.shape == (2, 48, 64, 3) and py.shape == (2, 48, 64, 1) and vx.shape == (1, 48, 64, 3)
    assert px[:, 40:].sum() == 0 and px[:, :40, :56].min() == 1
    same = pad_to_model(build_model("sa_unetv2", start_neurons=8), x, y)
    assert same[0] is x and same[1] is y


def test_hyper_parameters_override():
    model = build_model(
        "sa_unetv2", start_neurons=8, dropblock_rate=0.1, dropblock_size=5, gn_groups=4
    )
    assert model.get_layer("bottleneck_step1_conv").filters == 32
    assert model.get_layer("dec1_step2_dropblock").block_size == 5
    assert model.get_layer("dec1_step2_gn").groups == 4
    grey = build_model("sa_unetv2", input_shape=(None, None, 1))
    assert grey.input_shape[-1] == 1


def test_forward_non_square():
    model = build_model("sa_unetv2")
    x = np.random.default_rng(0).uniform(size=(2, 64, 96, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, 64, 96, 1)
    assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_keras_file_round_trip_in_safe_mode(name, tmp_path):
    model = build_model(name)
    x = np.random.default_rng(1).uniform(size=(1, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(
        path, safe_mode=True
    )  # no custom_objects: registration suffices
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x, training=False)), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(load_model(path)(x)), expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "resnet"}, "sa_unetv2, sa_unet, unet"),
        ({"name": "sa_unetv2", "input_shape": (60, 64, 3)}, "multiples of 8"),
        ({"name": "unet", "input_shape": (40, 64, 3)}, "multiples of 16"),
        ({"name": "sa_unetv2", "dropblock_rate": 1.0}, r"\[0, 1\)"),
        ({"name": "sa_unetv2", "dropblock_rate": -0.5}, r"\[0, 1\)"),
        ({"name": "sa_unetv2", "gn_groups": 5}, "gn_groups=5 must divide"),
        ({"name": "sa_unetv2", "start_neurons": 0}, "positive integer"),
        ({"name": "sa_unetv2", "filters": 3}, "valid: start_neurons"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fold_threshold_moves_the_operating_point_to_one_half(name, tmp_path):
    from models.blocks import fold_threshold

    model = build_model(name)
    x = np.random.default_rng(2).uniform(size=(1, 64, 64, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")
    threshold = float(np.quantile(before, 0.7))  # a threshold that splits this output
    shift = fold_threshold(model, threshold)
    assert np.isclose(shift, -np.log(threshold / (1 - threshold)))
    model.save(tmp_path / "folded.keras")  # the shift travels with the file
    after = keras.ops.convert_to_numpy(load_model(tmp_path / "folded.keras")(x)).astype("float64")
    logit = np.log(before / (1 - before))
    np.testing.assert_allclose(after, 1 / (1 + np.exp(-(logit + shift))), atol=1e-5)
    clear = np.abs(before - threshold) > 1e-5  # pixels not on the threshold itself
    assert clear.mean() > 0.99
    np.testing.assert_array_equal((after > 0.5)[clear], (before > threshold)[clear])
    assert 0.2 < (after > 0.5).mean() < 0.4  # about the 30 % above the 0.7 quantile


def test_fold_threshold_errors():
    from models.blocks import fold_threshold
    from utils.errors import UserError

    model = build_model("sa_unetv2")
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(UserError, match="strictly between 0 and 1"):
            fold_threshold(model, bad)
    headless = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(1, 1)])
    with pytest.raises(UserError, match="no output head 'head_conv'"):
        fold_threshold(headless, 0.7)


def test_load_model_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_model(bad)
    legacy = tmp_path / "weights.h5"
    legacy.write_bytes(b"")
    with pytest.raises(ValueError, match="'.keras' file"):
        load_model(legacy)


FIT_SCRIPT = textwrap.dedent(
    """
    import numpy as np, keras
    from models import build_model
    assert keras.backend.backend() == "{backend}"
    keras.utils.set_random_seed(0)
    model = build_model("sa_unetv2")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", jit_compile={jit})
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 64, 64, 3)).astype("float32")
    y = (rng.uniform(size=(2, 64, 64, 1)) > 0.9).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    loss = history.history["loss"][0]
    assert np.isfinite(loss), loss
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert changed > 0
    print("fit-ok", loss, changed)
    """
)


@pytest.mark.slow
def test_one_fit_step_on_pytorch():
    """model.fit on PyTorch. TensorFlow and JAX (jit-compiled) train through train.py in
    tests/test_train.py (test_training_path_needs_no_tensorflow, the --distribute tests)."""
    run_on_backend(FIT_SCRIPT.format(backend="torch", jit="False"), "torch", expect="fit-ok")


# The artery/vein network (models/sa_unetv2.py, docs/arteries-veins.md).


def test_sa_unetv2_av_is_sa_unetv2_with_a_three_channel_head():
    from models import build_sa_unetv2_av

    vessel, av = build_model("sa_unetv2"), build_sa_unetv2_av()
    # The head's 1x1 convolution gains two output channels of 16 weights and a bias each.
    assert av.count_params() == 260_555 == PARAMS["sa_unetv2"] + 2 * (16 + 1)
    assert av.output_shape == (None, None, None, 3)
    assert [layer.name for layer in av.layers] == [layer.name for layer in vessel.layers]
    for layer in av.layers:
        if layer.name != "head_conv":
            assert [w.shape for w in layer.get_weights()] == [
                w.shape for w in vessel.get_layer(layer.name).get_weights()
            ], layer.name
    assert av.get_layer("head_conv").filters == 3
    assert av.get_layer("head_sigmoid").dtype_policy.name == "float32"
    assert "Lambda" not in [layer.__class__.__name__ for layer in av.layers]


def test_sa_unetv2_av_round_trips_in_safe_mode(tmp_path):
    from models import build_sa_unetv2_av

    model = build_sa_unetv2_av(start_neurons=8)
    x = np.random.default_rng(5).uniform(size=(2, 32, 48, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert expected.shape == (2, 32, 48, 3) and 0 <= expected.min() and expected.max() <= 1
    model.save(tmp_path / "av.keras")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(load_model(tmp_path / "av.keras")(x)), expected
    )


def _randomize_group_norms(model, seed=1):
    """Non-trivial GroupNorm scale and offset, so a layer copied from the wrong place shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.__class__.__name__ == "GroupNormalization":
            layer.gamma.assign(rng.normal(1.0, 0.3, layer.gamma.shape))
            layer.beta.assign(rng.normal(0.0, 0.3, layer.beta.shape))
    return model


def _features_and_output(model, x):
    probe = keras.Model(model.input, [model.get_layer("dec1_step2_silu").output, model.output])
    return [keras.ops.convert_to_numpy(t) for t in probe(x, training=False)]


@pytest.mark.parametrize("source", ["random", "shipped"])
def test_av_model_started_from_vessel_weights_reproduces_the_vessel_output(source, tmp_path):
    from models import build_sa_unetv2_av, init_from_vessel_weights
    from tests.helpers import ROOT

    if source == "shipped":
        path = ROOT / "weights" / "sa_unetv2_fundus.keras"
        if not path.is_file():
            pytest.skip(f"{path} is not here")
    else:
        keras.utils.set_random_seed(7)
        path = tmp_path / "vessel.keras"
        _randomize_group_norms(build_model("sa_unetv2")).save(path)
    vessel = load_model(path)
    av = build_sa_unetv2_av()
    copied = init_from_vessel_weights(av, path)
    assert len(copied) == 36  # 14 conv steps x (conv, GroupNorm), 4 attention convs, 3 ConvT, head
    x = np.random.default_rng(6).uniform(size=(1, 64, 96, 3)).astype("float32")
    vessel_features, vessel_prob = _features_and_output(vessel, x)
    av_features, av_prob = _features_and_output(av, x)
    np.testing.assert_array_equal(av_features, vessel_features)  # the trunk: bit for bit
    # The head: a 1x1 convolution of 3 output channels sums its 16 products in another order than
    # one of 1 channel, so the probability may differ in its last bit (float32 ulp at 1: 1.2e-7).
    np.testing.assert_allclose(av_prob[..., :1], vessel_prob, rtol=0, atol=2.5e-7)
    assert vessel_prob.std() > 0.01  # a network whose output varies, so equality means something
    # Artery and vein start apart, at vessel +- d (seeded): their kernels' mean is the vessel's.
    kernel = av.get_layer("head_conv").get_weights()[0]
    spread = kernel[..., 1] - kernel[..., 0]
    np.testing.assert_allclose(kernel[..., 2] - kernel[..., 0], -spread, rtol=0, atol=1e-6)
    assert 0.3 < spread.std() / kernel[..., 0].std() < 0.7  # TYPE_SPREAD 0.5 of the kernel's std
    assert np.abs(av_prob[..., 1] - av_prob[..., 2]).max() > 1e-3
    again = build_sa_unetv2_av()
    init_from_vessel_weights(again, path)
    np.testing.assert_array_equal(again.get_layer("head_conv").get_weights()[0], kernel)  # seeded


def test_av_model_starts_from_av_weights_as_they_are(tmp_path):
    """An A/V file (e.g. the RITE weights starting an HRF-AV run) is copied whole: the three
    output channels reproduce it, with no spread added to its trained artery and vein kernels."""
    from models import build_sa_unetv2_av, init_from_vessel_weights

    keras.utils.set_random_seed(5)
    trained = build_sa_unetv2_av(start_neurons=8)
    kernel, bias = trained.get_layer("head_conv").get_weights()
    rng = np.random.default_rng(2)
    trained.get_layer("head_conv").set_weights([kernel + rng.normal(size=kernel.shape), bias])
    trained.save(tmp_path / "av.keras")
    started = build_sa_unetv2_av(start_neurons=8)
    init_from_vessel_weights(started, tmp_path / "av.keras")
    x = rng.uniform(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        started.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_equal_artery_and_vein_kernels_give_the_trunk_no_type_signal():
    """Why the A/V head starts apart: with equal artery and vein kernels the trunk's gradient is
    the same whatever the vessel's type (it sees only artery + vein), apart it differs."""
    import tensorflow as tf

    from losses import av_bce_mcc_loss
    from models import build_sa_unetv2_av
    from models.sa_unetv2 import copy_vessel_weights

    keras.utils.set_random_seed(3)
    vessel = build_model("sa_unetv2", start_neurons=8)
    x = np.random.default_rng(1).uniform(size=(1, 32, 32, 3)).astype("float32")
    grads = {}
    for spread in (0.0, 0.5):
        av = build_sa_unetv2_av(start_neurons=8)
        copy_vessel_weights(av, vessel, type_spread=spread)
        trunk = [w for w in av.trainable_weights if "head_conv" not in w.path]
        for label in (1, 2):  # the left half artery, then the left half vein; the rest background
            y = np.zeros((1, 32, 32, 1), dtype="uint8")
            y[:, :, :16] = label
            with tf.GradientTape() as tape:
                loss = av_bce_mcc_loss(y, av(x, training=False))
            grads[spread, label] = np.concatenate(
                [keras.ops.convert_to_numpy(g).ravel() for g in tape.gradient(loss, trunk)]
            )
    np.testing.assert_allclose(grads[0.0, 1], grads[0.0, 2], rtol=1e-4, atol=1e-7)
    assert np.abs(grads[0.5, 1] - grads[0.5, 2]).max() > 100 * np.abs(grads[0.0, 1] - grads[0.0, 2]).max()


def test_av_model_refuses_weights_of_another_network(tmp_path):
    from models import build_sa_unetv2_av, init_from_vessel_weights
    from utils.errors import UserError

    build_model("sa_unetv2", start_neurons=8).save(tmp_path / "narrow.keras")
    message = "narrow.keras cannot start model 'sa_unetv2_av'.*'enc1_step1_conv' holds weights"
    with pytest.raises(UserError, match=message):
        init_from_vessel_weights(build_sa_unetv2_av(), tmp_path / "narrow.keras")
    inputs = keras.Input((None, None, 3))
    first_conv_only = keras.layers.Conv2D(8, 3, padding="same", name="enc1_step1_conv")(inputs)
    keras.Model(inputs, first_conv_only).save(tmp_path / "stub.keras")
    with pytest.raises(UserError, match="has no layer 'enc1_step1_gn'"):
        init_from_vessel_weights(build_sa_unetv2_av(start_neurons=8), tmp_path / "stub.keras")
