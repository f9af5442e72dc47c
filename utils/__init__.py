"""Small helpers shared by the command-line entry points and the library."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the tools' own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
