"""Training, evaluation and prediction pipelines behind train.py, evaluate.py and predict.py.

Nothing here imports TensorFlow at module level: the training path runs on
any Keras backend (TensorFlow by default, JAX on the GPU machine).
"""
