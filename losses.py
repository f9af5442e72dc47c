"""Training loss of SA-UNetv2: weighted binary cross-entropy plus (1 - soft MCC).

Everything is written with ``keras.ops`` so the same code runs on the
TensorFlow, JAX and PyTorch backends. Inputs are cast to float32 first, so
the loss is computed in float32 under ``mixed_bfloat16`` too.
"""

from __future__ import annotations

import keras
from keras import ops

# Clip probabilities away from 0 and 1 before the logarithms of the BCE.
BCE_EPSILON = 1e-7
# Floor of the product under the square root of the MCC denominator: the
# product is 0 exactly when a batch has no vessel pixel or no background
# pixel, where sqrt has an infinite derivative (the notebook's NaN gradient).
MCC_DENOMINATOR_FLOOR = 1e-7


def _as_float32(y_true, y_pred):
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def soft_mcc(y_true, y_pred):
    """Soft Matthews correlation of a whole batch, from probabilities.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1} (any float or int dtype).
        y_pred: (B, H, W, 1) vessel probabilities in [0, 1].

    Returns:
        Scalar float32 in [-1, 1]. With the soft counts summed over every
        pixel of the batch, TP = sum(p*y), TN = sum((1-p)(1-y)),
        FP = sum(p(1-y)), FN = sum((1-p)y),
        MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
        The product under the square root is floored at
        ``MCC_DENOMINATOR_FLOOR``. With both classes in the batch, TP+FN and
        TN+FP are pixel counts >= 1, so the floor only acts when sum(p) or
        sum(1-p) is below about 1e-7 / (pixels in batch)^2; the value is the
        formula's otherwise. A batch of only background or only vessel gives
        MCC 0 (the numerator is 0 there) with a finite gradient.
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    tp = ops.sum(y_pred * y_true)
    tn = ops.sum((1.0 - y_pred) * (1.0 - y_true))
    fp = ops.sum(y_pred * (1.0 - y_true))
    fn = ops.sum((1.0 - y_pred) * y_true)
    numerator = tp * tn - fp * fn
    product = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return numerator / ops.sqrt(ops.maximum(product, MCC_DENOMINATOR_FLOOR))


def binary_crossentropy(y_true, y_pred):
    """Mean binary cross-entropy over every pixel of the batch.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1}.
        y_pred: (B, H, W, 1) probabilities in [0, 1]; p and 1 - p are each
            clipped to [BCE_EPSILON, 1] before the logarithms.

    Returns:
        Scalar float32 >= 0 (natural logarithm, nats per pixel).
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    # Clip p and 1 - p separately: in float32 1 - (1 - 1e-7) is 1.19e-7, not 1e-7.
    log_p = ops.log(ops.clip(y_pred, BCE_EPSILON, 1.0))
    log_not_p = ops.log(ops.clip(1.0 - y_pred, BCE_EPSILON, 1.0))
    total = ops.sum(y_true * log_p + (1.0 - y_true) * log_not_p)
    # An empty batch (a replica's share of a short last batch) gives 0, not 0 / 0.
    count = ops.maximum(ops.cast(ops.size(y_true), "float32"), 1.0)
    return -total / count


def bce_mcc_loss(y_true, y_pred, bce_weight=0.5, mcc_weight=0.5):
    """bce_weight * BCE + mcc_weight * (1 - soft MCC), one scalar per batch.

    Args:
        y_true: (B, H, W, 1) labels in {0, 1}.
        y_pred: (B, H, W, 1) sigmoid probabilities in [0, 1].
        bce_weight, mcc_weight: weights of the two terms (paper: 0.5, 0.5).

    Returns:
        Scalar float32; in [0, mcc_weight * 2 + bce_weight * ~16.1].
    """
    bce = binary_crossentropy(y_true, y_pred)
    mcc = soft_mcc(y_true, y_pred)
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
