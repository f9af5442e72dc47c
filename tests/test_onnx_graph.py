"""The ONNX graph's rewrites compute what the Keras layers compute (ONNX Runtime as the judge)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX graph needs the onnx package")
ort = pytest.importorskip("onnxruntime", reason="these checks run the graph in ONNX Runtime")

from onnx import TensorProto, helper  # noqa: E402

from inference.onnx_graph import (  # noqa: E402
    _attention_block,
    _attention_map,
    _GraphBuilder,
    build_onnx_model,
)


def run(onnx_model, feeds: dict) -> np.ndarray:
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("block", [1, 2, 4])
@pytest.mark.parametrize("kernel_size", [3, 7])
@pytest.mark.parametrize("use_bias", [False, True])
def test_blocked_attention_map_equals_the_convolution(block, kernel_size, use_bias):
    """sigmoid(conv_k(concat(a, b))) computed on block x block tiles, borders included."""
    keras.utils.set_random_seed(kernel_size + block)
    conv = keras.layers.Conv2D(
        1, kernel_size, padding="same", use_bias=use_bias, activation="sigmoid"
    )
    conv.build((None, None, None, 2))
    if use_bias:
        conv.bias.assign([0.7])
    g = _GraphBuilder()
    out = _attention_map(g, conv, ["a", "b"], block, "att")
    maps = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1, "H", "W"]) for n in "ab"]
    graph = helper.make_graph(
        g.nodes,
        "att",
        maps,
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        g.initializers,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    for height, width in [(16, 24), (8, 8), (40, 12)]:  # H/4, W/4 odd and even
        a, b = (rng.normal(size=(2, 1, height, width)).astype(np.float32) for _ in range(2))
        got = run(onnx_model, {"a": a, "b": b})
        expected = conv(np.concatenate([a, b], axis=1).transpose(0, 2, 3, 1))
        np.testing.assert_allclose(got.transpose(0, 2, 3, 1), expected, atol=1e-6)


def test_attention_block_follows_the_guaranteed_multiple():
    # H and W are multiples of 8 at the input: 8 / scale at each level.
    assert [_attention_block(s) for s in (1, 2, 4, 8, 16)] == [4, 4, 2, 1, 1]


def _two_branch_model(concat_is_output: bool):
    inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(5, 1, name="b")(inputs)
    joined = keras.layers.Concatenate(name="joined")([a, b])
    if concat_is_output:
        return keras.Model(inputs, joined)
    # Read by two convolutions: the concatenation must then be materialized once.
    c = keras.layers.Conv2D(2, 3, padding="same", name="c")(joined)
    d = keras.layers.Conv2D(2, 3, padding="same", activation="sigmoid", name="d")(joined)
    return keras.Model(inputs, keras.layers.Concatenate(name="out")([c, d]))


def _split_model():
    inputs = keras.Input((None, None, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(5, 1, name="b")(inputs)
    joined = keras.layers.Concatenate(name="joined")([a, b, inputs])
    return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", name="c")(joined))


@pytest.mark.parametrize(
    "make, concats",
    [
        (_split_model, 0),  # read by one conv only: split into three summed convs
        (lambda: _two_branch_model(False), 2),  # "joined" read twice; "out" is the output
        (lambda: _two_branch_model(True), 1),
    ],
)
def test_concatenation_is_split_only_when_one_conv_reads_it(make, concats):
    keras.utils.set_random_seed(4)
    model = make()
    onnx_model = build_onnx_model(model)
    ops = [node.op_type for node in onnx_model.graph.node]
    assert ops.count("Concat") == concats
    images = np.random.default_rng(2).random((2, 16, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(
        run(onnx_model, {"image": images}), model.predict_on_batch(images), atol=1e-5
    )
