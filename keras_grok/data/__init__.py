"""Data sets: synthetic modular arithmetic (always offline), images and text (TFDS)."""

from keras_grok.data.epoch_batches import EpochBatches
from keras_grok.data.images import IMAGE_DATASETS, ImageSplit, load_images
from keras_grok.data.modular import OPERATIONS, ModularSplit, modular_dataset
from keras_grok.data.text import TEXT_DATASETS, TextSplit, load_text
from keras_grok.data.tfds_source import DatasetNotPreparedError

__all__ = [
    "IMAGE_DATASETS",
    "OPERATIONS",
    "TEXT_DATASETS",
    "DatasetNotPreparedError",
    "EpochBatches",
    "ImageSplit",
    "ModularSplit",
    "TextSplit",
    "load_images",
    "load_text",
    "modular_dataset",
]
