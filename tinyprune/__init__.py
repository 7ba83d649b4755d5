"""tinyprune: fit Keras models onto microcontrollers.

Prune (TF-MOT), quantize to full int8, convert, verify against the real TFLM interpreter and export
firmware. Importing the package is cheap: TensorFlow is imported only by the stages that need it.
"""
import os

# TF-MOT works only with legacy Keras (tf_keras); this must be set before TensorFlow is first imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
