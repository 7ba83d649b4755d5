"""What comes in: models (tf-keras, Keras 3, an int8 .tflite) and data sets (npz, bundled sets, image
folders, CSV tables)."""
