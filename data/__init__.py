"""Datasets for retinal vessel segmentation: readers, geometry, FOV masks, augmentation, splits.

NumPy + Pillow only (no TensorFlow/Keras import), so it runs under any Keras backend.
"""

from data.readers import load_dataset, resolve_data_root
from data.samples import Dataset, Sample

__all__ = ["Dataset", "Sample", "load_dataset", "resolve_data_root"]
