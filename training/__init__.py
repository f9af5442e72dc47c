"""Training and evaluation pipelines behind train.py and evaluate.py (prediction: inference/).

Nothing here imports TensorFlow at module level: the training path runs on
any Keras backend (TensorFlow by default, JAX on the GPU machine).
"""
