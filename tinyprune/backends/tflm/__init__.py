"""The TFLM backend: the int8 flatbuffer as a C array (c_array.py) run by the TFLM interpreter, in an
Arduino sketch (arduino.py) and a PlatformIO project (platformio.py); backend.py is its interface."""
