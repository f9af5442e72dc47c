"""A channels-first ONNX graph built directly from a Keras model's weights.

Keras' own ONNX export keeps the channels-last layout, where GroupNormalization
becomes a 5-D reshape plus strided reductions that dominate ONNX Runtime's
time. Here every layer is written in NCHW, where a group of channels is one
contiguous block; GroupNorm is computed from per-channel moments and applied
as one per-channel multiply-add (no reshape of the feature map). The interface
stays NHWC like the Keras model (one Transpose at the input, one at the
output), with dynamic batch, H and W (multiples of 8, as for the Keras model).

Two rewrites avoid operations that CPU runtimes execute slowly, computing the
same sums of products (docs/inference.md has the timings):
- A Concatenate whose only consumers are Conv2D layers is never materialized:
  each convolution is split into one convolution per concatenated part (its
  slice of the kernel), summed.
- The attention maps' k x k convolution with one output channel is computed on
  b x b pixel blocks (SpaceToDepth -> a small convolution with b*b outputs ->
  DepthToSpace), which runtimes vectorize over channels like any other conv.

Supported layers (all that the registered architectures use): InputLayer,
Conv2D, Conv2DTranspose (stride 2, 'same'), DropBlock2D (identity at
inference), GroupNormalization, Activation (silu, sigmoid, linear, relu),
MaxPooling2D, Concatenate, Add, Multiply (with broadcasting, as the attention
gate's one-channel map), SpatialAttention, CrossScaleSpatialAttention.
"""

from __future__ import annotations

import itertools

import numpy as np

from utils.errors import UserError

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probability"


class _GraphBuilder:
    """Accumulates ONNX nodes and initializers with unique names."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self._count = 0
        # Deferred concatenations (read by one Conv2D): placeholder -> [(tensor, channels)].
        self.concats: dict[str, list[tuple[str, int]]] = {}

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name=name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _same_pads(kernel_size, strides, dilation) -> list[int]:
    """ONNX pads for Keras 'same' with stride 1 (odd kernels pad symmetrically)."""
    if any(s != 1 for s in strides):
        raise UserError("the ONNX export supports Conv2D with stride 1 only")
    begin, end = [], []
    for k, d in zip(kernel_size, dilation, strict=True):
        total = (k - 1) * d
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _activation(g: _GraphBuilder, x: str, activation: str, hint: str) -> str:
    if activation in ("linear", None):
        return x
    if activation == "sigmoid":
        return g.op("Sigmoid", [x], f"{hint}_sigmoid")
    if activation in ("silu", "swish"):
        return g.op("Mul", [x, g.op("Sigmoid", [x], f"{hint}_sig")], f"{hint}_silu")
    if activation == "relu":
        return g.op("Relu", [x], f"{hint}_relu")
    raise UserError(f"the ONNX export does not support activation '{activation}' ({hint})")


def _activation_name(layer) -> str:
    import keras

    return keras.activations.serialize(layer.activation)


def _conv2d(g: _GraphBuilder, layer, x: str) -> str:
    """Conv2D of `x`; a deferred concatenation is convolved part by part and summed."""
    cfg = layer.get_config()
    if cfg["data_format"] != "channels_last" or cfg["groups"] != 1:
        raise UserError(
            f"the ONNX export supports channels-last, ungrouped Conv2D only ({layer.name})"
        )
    kernel = np.asarray(layer.kernel.numpy(), np.float32).transpose(3, 2, 0, 1)  # (O, I, kh, kw)
    bias = (
        [g.const(np.asarray(layer.bias.numpy(), np.float32), f"{layer.name}_b")]
        if layer.use_bias
        else []
    )
    pads = (
        _same_pads(cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"])
        if cfg["padding"] == "same"
        else [0, 0, 0, 0]
    )
    attrs = {
        "kernel_shape": list(cfg["kernel_size"]),
        "strides": list(cfg["strides"]),
        "dilations": list(cfg["dilation_rate"]),
        "pads": pads,
    }
    parts = g.concats.pop(x, [(x, kernel.shape[1])])
    y, start = None, 0
    for part, channels in parts:
        w = g.const(kernel[:, start : start + channels], f"{layer.name}_w")
        start += channels
        # The bias goes with the last part; the partial convolutions are summed.
        term = g.op(
            "Conv", [part, w, *(bias if start == kernel.shape[1] else [])], layer.name, **attrs
        )
        y = term if y is None else g.op("Add", [y, term], f"{layer.name}_sum")
    return _activation(g, y, _activation_name(layer), layer.name)


def _conv2d_transpose(g: _GraphBuilder, layer, x: str) -> str:
    cfg = layer.get_config()
    kh, kw = cfg["kernel_size"]
    sh, sw = cfg["strides"]
    if (
        cfg["padding"] != "same"
        or cfg["output_padding"] is not None
        or tuple(cfg["dilation_rate"]) != (1, 1)
    ):
        raise UserError(
            f"the ONNX export supports Conv2DTranspose with padding 'same' only ({layer.name})"
        )
    # Keras kernel (kh, kw, out, in) -> ONNX (in, out, kh, kw); no flip: both are conv gradients.
    kernel = np.asarray(layer.kernel.numpy(), np.float32).transpose(3, 2, 0, 1)
    inputs = [x, g.const(kernel, f"{layer.name}_w")]
    if layer.use_bias:
        inputs.append(g.const(np.asarray(layer.bias.numpy(), np.float32), f"{layer.name}_b"))
    # TF 'same' (output = input * stride) puts the odd pixel of padding at the end.
    pad_h, pad_w = max(kh - sh, 0), max(kw - sw, 0)
    pads = [pad_h // 2, pad_w // 2, pad_h - pad_h // 2, pad_w - pad_w // 2]
    y = g.op(
        "ConvTranspose",
        inputs,
        layer.name,
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        pads=pads,
    )
    return _activation(g, y, _activation_name(layer), layer.name)


def _group_norm(g: _GraphBuilder, layer, x: str) -> str:
    """GroupNorm as x * a + b, a and b per (sample, channel) from two-pass channel moments.

    Per channel: mean m_c, then v_c = mean((x - m_c)^2) (two passes, so no
    E[x^2] - E[x]^2 cancellation). Per group of equally sized channels:
    m_g = mean(m_c), v_g = mean(v_c + (m_c - m_g)^2). No reshape of the full
    map, so runtimes keep their blocked or channels-last layouts, and the
    final multiply-add fuses with the SiLU that follows.
    """
    if layer.axis not in (-1, 3):
        raise UserError(
            f"the ONNX export supports GroupNormalization over the last axis ({layer.name})"
        )
    name, groups = layer.name, layer.groups
    channels = int(layer.gamma.shape[0] if layer.scale else layer.beta.shape[0])
    per_group = channels // groups
    mean_c = g.op("ReduceMean", [x], f"{name}_mean_c", axes=[2, 3], keepdims=1)
    centred = g.op("Sub", [x, mean_c], f"{name}_centred")
    var_c = g.op(
        "ReduceMean",
        [g.op("Mul", [centred, centred], f"{name}_sq")],
        f"{name}_var_c",
        axes=[2, 3],
        keepdims=1,
    )
    to_groups = g.const(np.array([0, groups, per_group], np.int64), "gn_groups_shape")
    to_channels = g.const(np.array([0, channels, 1, 1], np.int64), "gn_channels_shape")
    mean_cg = g.op("Reshape", [mean_c, to_groups], f"{name}_mean_cg")  # (N, G, C/G)
    mean_g = g.op("ReduceMean", [mean_cg], f"{name}_mean_g", axes=[2], keepdims=1)
    spread = g.op("Sub", [mean_cg, mean_g], f"{name}_spread")
    within = g.op("Reshape", [var_c, to_groups], f"{name}_var_cg")
    total = g.op("Add", [within, g.op("Mul", [spread, spread], f"{name}_spread2")], f"{name}_tot")
    var_g = g.op("ReduceMean", [total], f"{name}_var_g", axes=[2], keepdims=1)
    eps = g.const(np.array(layer.epsilon, np.float32), f"{name}_eps")
    inv_g = g.op(
        "Reciprocal",
        [g.op("Sqrt", [g.op("Add", [var_g, eps], f"{name}_ve")], f"{name}_sd")],
        f"{name}_inv_g",
    )
    # (N, G, 1) -> (N, G, C/G) -> (N, C, 1, 1): every channel of a group gets its group's value.
    ones = g.const(np.ones((1, 1, per_group), np.float32), "gn_ones")
    scale = g.op(
        "Reshape", [g.op("Mul", [inv_g, ones], f"{name}_inv_cg"), to_channels], f"{name}_inv_c"
    )
    mean = g.op(
        "Reshape", [g.op("Mul", [mean_g, ones], f"{name}_mean_cg2"), to_channels], f"{name}_mean"
    )
    if layer.scale:
        gamma = np.asarray(layer.gamma.numpy(), np.float32).reshape(1, channels, 1, 1)
        scale = g.op("Mul", [scale, g.const(gamma, f"{name}_gamma")], f"{name}_a")
    shift = g.op("Neg", [g.op("Mul", [mean, scale], f"{name}_ma")], f"{name}_nma")
    if layer.center:
        beta = np.asarray(layer.beta.numpy(), np.float32).reshape(1, channels, 1, 1)
        shift = g.op("Add", [shift, g.const(beta, f"{name}_beta")], f"{name}_b")
    return g.op("Add", [g.op("Mul", [x, scale], f"{name}_xa"), shift], f"{name}_out")


def _channel_reduce(g: _GraphBuilder, op_type: str, x: str, hint: str) -> str:
    return g.op(op_type, [x], hint, axes=[1], keepdims=1)


def _block_kernel(kernel: np.ndarray, b: int) -> np.ndarray:
    """The k x k kernel (kh, kw, I, 1) of a one-output convolution, rewritten for b x b blocks.

    With x' the per-channel SpaceToDepth(x_c, b) concatenated (channel c * b*b + i * b + j
    holds x[c, b*Y + i, b*X + j]) and y' = conv(x', K) with padding R,
    DepthToSpace(y', b) equals the 'same' convolution of x with `kernel`. Returns K, shape (b*b, b*b*I, 2R+1, 2R+1)
    (R = ceil((k // 2) / b)); every product of the original convolution
    appears once, the other taps are zero.
    """
    kh, kw, n_in, _ = kernel.shape
    if kh != kw or kh % 2 == 0:
        raise UserError("the blocked attention convolution needs a square, odd kernel")
    r = kh // 2
    big_r = -(-r // b)
    out = np.zeros((b * b, b * b * n_in, 2 * big_r + 1, 2 * big_r + 1), np.float32)
    phases, offsets = range(b), range(-big_r, big_r + 1)
    for oy, ox, iy, ix, dy, dx in itertools.product(
        phases, phases, phases, phases, offsets, offsets
    ):
        ky, kx = b * dy + iy - oy + r, b * dx + ix - ox + r
        if 0 <= ky < kh and 0 <= kx < kw:  # input channels iy*b+ix, + b*b, ...: one per map
            out[oy * b + ox, iy * b + ix :: b * b, dy + big_r, dx + big_r] = kernel[ky, kx, :, 0]
    return out


def _attention_map(g: _GraphBuilder, conv, parts: list[str], block: int, hint: str) -> str:
    """sigmoid(conv(concat(parts))) for one-channel maps, on block x block tiles when block > 1."""
    if block == 1:
        descriptor = g.op("Concat", parts, f"{hint}_descriptor", axis=1)
        return _conv2d(g, conv, descriptor)  # the conv carries the sigmoid activation
    kernel = np.asarray(conv.kernel.numpy(), np.float32)
    big = _block_kernel(kernel, block)
    pad = (big.shape[-1] - 1) // 2
    # Tiles of each one-channel map, then concatenated: concatenating the full-size maps
    # first ran as a slow reference kernel in OpenVINO.
    tiles = [g.op("SpaceToDepth", [part], f"{hint}_tiles", blocksize=block) for part in parts]
    tiles = g.op("Concat", tiles, f"{hint}_descriptor", axis=1)
    bias = []
    if conv.use_bias:
        value = np.asarray(conv.bias.numpy(), np.float32)
        bias = [g.const(np.repeat(value, block * block), f"{hint}_block_b")]
    y = g.op(
        "Conv",
        [tiles, g.const(big, f"{hint}_block_w"), *bias],
        f"{hint}_block_conv",
        kernel_shape=list(big.shape[2:]),
        pads=[pad] * 4,
    )
    y = g.op("DepthToSpace", [y], f"{hint}_map", blocksize=block, mode="DCR")
    return _activation(g, y, _activation_name(conv), hint)


def _attention(g: _GraphBuilder, layer, inputs: list[str], block: int) -> str:
    from models.layers import CrossScaleSpatialAttention

    if isinstance(layer, CrossScaleSpatialAttention):
        enc, dec = inputs
        parts = [
            _channel_reduce(g, "ReduceMean", enc, f"{layer.name}_enc_mean"),
            _channel_reduce(g, "ReduceMean", dec, f"{layer.name}_dec_mean"),
        ]
    else:
        (enc,) = inputs
        parts = [
            _channel_reduce(g, "ReduceMean", enc, f"{layer.name}_mean"),
            _channel_reduce(g, "ReduceMax", enc, f"{layer.name}_max"),
        ]
    weights = _attention_map(g, layer.conv, parts, block, layer.name)
    return g.op("Mul", [enc, weights], f"{layer.name}_out")


def _attention_block(scale: int) -> int:
    """Tile size for an attention map at `scale` (input pixels per pixel): H and W of the
    input are multiples of 8, so at scale s they are multiples of 8 / s."""
    multiple = 8 // scale if 8 % scale == 0 else 1
    return 4 if multiple % 4 == 0 else 2 if multiple % 2 == 0 else 1


def _only_reader_is_conv(layer) -> bool:
    """True when the layer's output is read by exactly one (non-transposed) Conv2D."""
    import keras

    readers = [node.operation for node in layer._outbound_nodes]
    return (
        len(readers) == 1
        and isinstance(readers[0], keras.layers.Conv2D)
        and not isinstance(readers[0], keras.layers.Conv2DTranspose)
    )


def build_onnx_model(model, opset: int = OPSET):
    """Return an `onnx.ModelProto` computing `model` at inference (NHWC in, NHWC out).

    Input "image": float32 (N, H, W, C); output "probability": float32 (N, H, W, 1).
    """
    import keras
    import onnx
    from onnx import TensorProto, helper

    from models.layers import (
        ChannelMax,
        ChannelMean,
        CrossScaleSpatialAttention,
        DropBlock2D,
        SpatialAttention,
    )

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError("the ONNX export supports models with one input and one output")
    g = _GraphBuilder()
    names = {id(model.inputs[0]): g.op("Transpose", [INPUT_NAME], "to_nchw", perm=[0, 3, 1, 2])}
    scales = {names[id(model.inputs[0])]: 1}  # tensor -> input pixels per pixel (H and W)

    for layer in model.operations:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        nodes = [n for n in layer._inbound_nodes if all(id(t) in names for t in n.input_tensors)]
        if len(nodes) != 1:
            raise UserError(f"the ONNX export cannot place layer '{layer.name}' (shared or nested)")
        node = nodes[0]
        inputs = [names[id(t)] for t in node.input_tensors]
        scale = max(scales[x] for x in inputs)
        if isinstance(layer, keras.layers.Conv2DTranspose):
            scale = max(scale // layer.strides[0], 1)
            y = _conv2d_transpose(g, layer, inputs[0])
        elif isinstance(layer, keras.layers.Conv2D):
            y = _conv2d(g, layer, inputs[0])
        elif isinstance(layer, keras.layers.GroupNormalization):
            y = _group_norm(g, layer, inputs[0])
        elif isinstance(layer, DropBlock2D | keras.layers.Dropout):
            y = inputs[0]
        elif isinstance(layer, keras.layers.Activation):
            y = _activation(g, inputs[0], _activation_name(layer), layer.name)
        elif isinstance(layer, keras.layers.MaxPooling2D):
            cfg = layer.get_config()
            if cfg["padding"] != "valid":
                raise UserError(f"the ONNX export supports 'valid' max pooling only ({layer.name})")
            scale *= cfg["strides"][0]
            y = g.op(
                "MaxPool",
                inputs,
                layer.name,
                kernel_shape=list(cfg["pool_size"]),
                strides=list(cfg["strides"]),
            )
        elif isinstance(layer, keras.layers.Concatenate):
            if layer.axis not in (-1, 3):
                raise UserError(
                    f"the ONNX export supports channel concatenation only ({layer.name})"
                )
            if _only_reader_is_conv(layer):
                y = g.name(layer.name)
                g.concats[y] = [
                    (x, int(t.shape[-1])) for x, t in zip(inputs, node.input_tensors, strict=True)
                ]
            else:
                y = g.op("Concat", inputs, layer.name, axis=1)
        elif isinstance(layer, keras.layers.Add | keras.layers.Multiply):
            op_type = "Add" if isinstance(layer, keras.layers.Add) else "Mul"
            y = inputs[0]
            for other in inputs[1:]:
                y = g.op(op_type, [y, other], layer.name)
        elif isinstance(layer, SpatialAttention | CrossScaleSpatialAttention):
            y = _attention(g, layer, inputs, _attention_block(scale))
        elif isinstance(layer, ChannelMean):
            y = _channel_reduce(g, "ReduceMean", inputs[0], layer.name)
        elif isinstance(layer, ChannelMax):
            y = _channel_reduce(g, "ReduceMax", inputs[0], layer.name)
        else:
            raise UserError(
                f"the ONNX export does not support layer '{layer.name}' ({type(layer).__name__})"
            )
        outputs = node.outputs
        if len(outputs) != 1:
            raise UserError(f"the ONNX export supports single-output layers only ({layer.name})")
        names[id(outputs[0])] = y
        scales[y] = scale

    g.nodes.append(
        helper.make_node(
            "Transpose", [names[id(model.outputs[0])]], [OUTPUT_NAME], perm=[0, 2, 3, 1]
        )
    )
    channels = model.inputs[0].shape[-1]
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", "H", "W", channels])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", "H", "W", 1])],
        g.initializers,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="sa-unetv2-keras",
        doc_string="NHWC float32 image in [0, 1] -> NHWC vessel probability",
    )
    onnx_model.ir_version = min(onnx_model.ir_version, 9)  # readable by older runtimes
    onnx.checker.check_model(onnx_model)
    return onnx_model
