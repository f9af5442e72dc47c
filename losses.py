"""Training loss of SA-UNetv2: weighted binary cross-entropy plus (1 - soft MCC).

The artery/vein network (`sa_unetv2_av`) is trained with the same loss on each of its three
channels, vessel, artery and vein, from the class map of `data.av` (`av_targets`,
`av_bce_mcc_loss`, `AvBceMccLoss`; docs/arteries-veins.md).

Everything is written with ``keras.ops`` so the same code runs on the
TensorFlow, JAX and PyTorch backends. Inputs are cast to float32 first, so
the loss is computed in float32 under ``mixed_bfloat16`` too.
"""

from __future__ import annotations

import keras
from keras import ops

from data.av import ARTERY, BACKGROUND, CROSSING, UNCERTAIN, VEIN

# Clip probabilities away from 0 and 1 before the logarithms of the BCE.
BCE_EPSILON = 1e-7
# Floor of the product under the square root of the MCC denominator: the
# product is 0 exactly when a batch has no vessel pixel or no background
# pixel, where sqrt has an infinite derivative (the notebook's NaN gradient).
MCC_DENOMINATOR_FLOOR = 1e-7


def _as_float32(y_true, y_pred):
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def soft_mcc(y_true, y_pred, weight=None):
    """Soft Matthews correlation of a whole batch, from probabilities.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1} (any float or int dtype).
        y_pred: (B, H, W, 1) vessel probabilities in [0, 1].
        weight: None, or y_true's shape, >= 0: each pixel's weight in the soft counts (a 0/1
            mask leaves out the pixels of weight 0 as if they were not in the batch).

    Returns:
        Scalar float32 in [-1, 1]. With the soft counts summed over every
        pixel of the batch, TP = sum(p*y), TN = sum((1-p)(1-y)),
        FP = sum(p(1-y)), FN = sum((1-p)y) (each term times the pixel's weight
        with `weight`),
        MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
        The product under the square root is floored at
        ``MCC_DENOMINATOR_FLOOR``. With both classes in the batch, TP+FN and
        TN+FP are pixel counts >= 1, so the floor only acts when sum(p) or
        sum(1-p) is below about 1e-7 / (pixels in batch)^2; the value is the
        formula's otherwise. A batch of only background or only vessel gives
        MCC 0 (the numerator is 0 there) with a finite gradient.
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    positive, negative = y_pred, 1.0 - y_pred
    if weight is not None:
        weight = ops.cast(weight, "float32")
        positive, negative = weight * positive, weight * negative
    tp = ops.sum(positive * y_true)
    tn = ops.sum(negative * (1.0 - y_true))
    fp = ops.sum(positive * (1.0 - y_true))
    fn = ops.sum(negative * y_true)
    numerator = tp * tn - fp * fn
    product = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return numerator / ops.sqrt(ops.maximum(product, MCC_DENOMINATOR_FLOOR))


def binary_crossentropy(y_true, y_pred, weight=None):
    """Mean binary cross-entropy over every pixel of the batch.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1}.
        y_pred: (B, H, W, 1) probabilities in [0, 1]; p and 1 - p are each
            clipped to [BCE_EPSILON, 1] before the logarithms.
        weight: None, or y_true's shape, >= 0: the weighted mean
            sum(weight * bce) / sum(weight) instead (a 0/1 mask: the mean over
            the pixels of weight 1).

    Returns:
        Scalar float32 >= 0 (natural logarithm, nats per pixel).
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    # Clip p and 1 - p separately: in float32 1 - (1 - 1e-7) is 1.19e-7, not 1e-7.
    log_p = ops.log(ops.clip(y_pred, BCE_EPSILON, 1.0))
    log_not_p = ops.log(ops.clip(1.0 - y_pred, BCE_EPSILON, 1.0))
    log_likelihood = y_true * log_p + (1.0 - y_true) * log_not_p
    if weight is None:
        total = ops.sum(log_likelihood)
        count = ops.cast(ops.size(y_true), "float32")
    else:
        weight = ops.cast(weight, "float32")
        total = ops.sum(weight * log_likelihood)
        count = ops.sum(weight)
    # An empty batch (a replica's share of a short last batch, or no pixel of weight > 0) gives
    # 0, not 0 / 0.
    return -total / ops.maximum(count, 1.0)


def bce_mcc_loss(y_true, y_pred, bce_weight=0.5, mcc_weight=0.5, weight=None):
    """bce_weight * BCE + mcc_weight * (1 - soft MCC), one scalar per batch.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1}.
        y_pred: (B, H, W, 1) sigmoid probabilities in [0, 1].
        bce_weight, mcc_weight: weights of the two terms (paper: 0.5, 0.5).
        weight: None, or y_true's shape, >= 0: each pixel's weight in both terms
            (``binary_crossentropy``, ``soft_mcc``); a pixel of weight 0 changes nothing.

    Returns:
        Scalar float32; in [0, mcc_weight * 2 + bce_weight * ~16.1].
    """
    bce = binary_crossentropy(y_true, y_pred, weight)
    mcc = soft_mcc(y_true, y_pred, weight)
    return bce_weight * bce + mcc_weight * (1.0 - mcc)


@keras.saving.register_keras_serializable(package="sa_unetv2")
class BceMccLoss(keras.losses.Loss):
    """Keras loss wrapping ``bce_mcc_loss`` (a batch-level scalar).

    The soft MCC is a statistic of the whole batch, not a mean of
    per-sample terms, so ``sample_weight`` has no per-sample meaning here:
    Keras multiplies the scalar by the weights and averages, i.e. it only
    scales the loss by the mean weight.
    """

    def __init__(self, bce_weight=0.5, mcc_weight=0.5, name="bce_mcc_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = float(bce_weight)
        self.mcc_weight = float(mcc_weight)

    def call(self, y_true, y_pred):
        return bce_mcc_loss(y_true, y_pred, self.bce_weight, self.mcc_weight)

    def get_config(self):
        config = super().get_config()
        config.update({"bce_weight": self.bce_weight, "mcc_weight": self.mcc_weight})
        return config


# The artery/vein network's loss (docs/arteries-veins.md, "The A/V network").

# Weights of the vessel, artery and vein channels in the A/V loss (normalised to sum 1).
AV_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0)


def av_targets(classes, ignore_crossings=False):
    """The A/V network's targets and pixel weights from a class map of `data.av`.

    Args:
        classes: (..., 1) class values (BACKGROUND 0 ... UNCERTAIN 4), any int or float dtype, as
            the training batches (B, H, W, 1) carry them.
        ignore_crossings: give CROSSING pixels weight 0 in the artery and vein channels too
            (HRF-AV, whose green marks crossings and vessels of neither type alike).

    Returns:
        (target, weight), each (..., 3) float32 in {0, 1}, channels vessel, artery, vein:
        vessel = class != BACKGROUND; artery = class in {ARTERY, CROSSING}; vein = class in
        {VEIN, CROSSING}. The weight is 1 except in the artery and vein channels at UNCERTAIN
        pixels (and CROSSING ones with `ignore_crossings`), which are 0: those pixels count as
        vessel but say nothing of the vessel's type.
    """
    c = ops.cast(ops.round(ops.cast(classes, "float32")), "int32")[..., 0]
    crossing = ops.equal(c, CROSSING)
    vessel = ops.not_equal(c, BACKGROUND)
    artery = ops.logical_or(ops.equal(c, ARTERY), crossing)
    vein = ops.logical_or(ops.equal(c, VEIN), crossing)
    untyped = ops.equal(c, UNCERTAIN)
    if ignore_crossings:
        untyped = ops.logical_or(untyped, crossing)
    typed = ops.cast(ops.logical_not(untyped), "float32")
    target = ops.cast(ops.stack([vessel, artery, vein], axis=-1), "float32")
    weight = ops.stack([ops.ones_like(typed), typed, typed], axis=-1)
    return target, weight


def av_bce_mcc_loss(
    classes,
    y_pred,
    ignore_crossings=False,
    channel_weights=AV_CHANNEL_WEIGHTS,
    bce_weight=0.5,
    mcc_weight=0.5,
):
    """The A/V loss: ``bce_mcc_loss`` of each channel against ``av_targets``, with its pixel
    weights, averaged over the channels with `channel_weights` (normalised to sum 1, so the scale
    is the vessel loss's).

    Args:
        classes: (B, H, W, 1) class map of `data.av`.
        y_pred: (B, H, W, 3) probabilities of vessel, artery, vein in [0, 1].
        ignore_crossings, channel_weights, bce_weight, mcc_weight: as in ``av_targets`` and
            ``bce_mcc_loss``; channel_weights: 3 numbers >= 0, not all 0.

    Returns:
        Scalar float32: sum_c w_c * (bce_weight * BCE_c + mcc_weight * (1 - MCC_c)) / sum_c w_c,
        each channel's BCE and soft MCC over the batch's pixels of weight 1 in that channel.
    """
    target, weight = av_targets(classes, ignore_crossings)
    total = sum(float(w) for w in channel_weights)
    loss = 0.0
    for channel, channel_weight in enumerate(channel_weights):
        if channel_weight:
            loss = loss + float(channel_weight) / total * bce_mcc_loss(
                target[..., channel],
                y_pred[..., channel],
                bce_weight,
                mcc_weight,
                weight=weight[..., channel],
            )
    return loss


@keras.saving.register_keras_serializable(package="sa_unetv2")
class AvBceMccLoss(keras.losses.Loss):
    """Keras loss wrapping ``av_bce_mcc_loss``: y_true is the (B, H, W, 1) class map, y_pred the
    network's (B, H, W, 3) output. A batch-level scalar, like ``BceMccLoss``."""

    def __init__(
        self,
        ignore_crossings=False,
        channel_weights=AV_CHANNEL_WEIGHTS,
        bce_weight=0.5,
        mcc_weight=0.5,
        name="av_bce_mcc_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        weights = tuple(float(w) for w in channel_weights)
        if len(weights) != 3 or min(weights) < 0 or not sum(weights) > 0:
            raise ValueError(
                f"channel_weights must be 3 numbers >= 0 (vessel, artery, vein), not all 0, "
                f"got {channel_weights!r}"
            )
        self.ignore_crossings = bool(ignore_crossings)
        self.channel_weights = weights
        self.bce_weight = float(bce_weight)
        self.mcc_weight = float(mcc_weight)

    def call(self, y_true, y_pred):
        return av_bce_mcc_loss(
            y_true,
            y_pred,
            self.ignore_crossings,
            self.channel_weights,
            self.bce_weight,
            self.mcc_weight,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ignore_crossings": self.ignore_crossings,
                "channel_weights": list(self.channel_weights),
                "bce_weight": self.bce_weight,
                "mcc_weight": self.mcc_weight,
            }
        )
        return config
