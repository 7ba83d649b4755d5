"""Stage 6: the int8 model as firmware source, rendered through the Jinja templates in
firmware_templates/: model_data.h/.cc (c_array), an Arduino sketch (arduino) and a PlatformIO
project (platformio) for the TFLM Arduino library."""
