"""The straightforward layers that the project's faster ones replace, kept as the reference.

`DirectDropBlock2D` draws noise over the whole map and min-pools the keep mask
with one k x k window; `plain_copy` swaps it and `keras.layers.GroupNormalization`
into a model in place of the project's `DropBlock2D` and `GroupNormalization`,
weights included. Used
by `benchmarks/training.py` (the plain step) and by the equivalence tests.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from models import layers as project_layers
from models.layers import PACKAGE, DropBlock2D, seed_rate_and_region


@keras.saving.register_keras_serializable(package=PACKAGE)
class DirectDropBlock2D(DropBlock2D):
    """DropBlock written directly: a full-size uniform draw and a k x k min-pool of the keep mask."""

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        shape = ops.shape(inputs)
        height, width = shape[1], shape[2]
        static_h, static_w = inputs.shape[1], inputs.shape[2]
        block_h = min(self.block_size, static_h) if static_h is not None else self.block_size
        block_w = min(self.block_size, static_w) if static_w is not None else self.block_size

        gamma, valid = seed_rate_and_region(self.rate, height, width, block_h, block_w)
        valid = ops.cast(valid, "float32")

        noise = keras.random.uniform(shape, dtype="float32", seed=self.seed_generator)
        keep = ops.cast((1.0 - valid + (1.0 - gamma) + noise) >= 1.0, "float32")
        keep = -ops.max_pool(-keep, pool_size=(block_h, block_w), strides=1, padding="same")
        kept_fraction = ops.maximum(ops.mean(keep), 1e-6)
        return inputs * ops.cast(keep / kept_fraction, inputs.dtype)


def _plain_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    config = layer.get_config()
    if type(layer) is project_layers.GroupNormalization:
        return layers.GroupNormalization.from_config(config)
    if type(layer) is DropBlock2D:
        return DirectDropBlock2D.from_config(config)
    return layer.__class__.from_config(config)


def plain_copy(model: keras.Model) -> keras.Model:
    """The same network and weights with Keras' GroupNormalization and the direct DropBlock."""
    copy = keras.models.clone_model(model, clone_function=_plain_layer)
    copy.set_weights(model.get_weights())
    return copy
