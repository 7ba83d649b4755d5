"""The tools every `prove` shares: the Arm cross compiler (gcc.py), the bare-metal runtime a firmware
links (runtime.py: startup, semihosting, the SysTick instruction counter, the linker script, from
firmware_templates/cortex_m/), and qemu machines that run it (qemu.py). The Arduino library a TFLM
sketch builds against, and the stand-in for the board's Arduino core, are in arduino.py."""
