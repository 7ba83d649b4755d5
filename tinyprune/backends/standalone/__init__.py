"""The standalone C backend (`--backend standalone`): the int8 graph compiled to plain C99 with
TFLM-exact kernels, checked on the host (gcc + ctypes) and on an emulated Cortex-M (qemu)."""
from tinyprune.backends.standalone.codegen import (
    StandaloneModel,
    check_supported,
    generate_standalone,
)
from tinyprune.backends.standalone.ops import STANDALONE_OPS, LayerReport

__all__ = ["STANDALONE_OPS", "LayerReport", "StandaloneModel", "check_supported", "generate_standalone"]
