"""A model that does not fit: flash and RAM as parts, and advice only for the parts that overflow, from
what shrinks them on that backend (no TensorFlow)."""
import pytest

from tinyprune.backends.standalone.backend import BACKEND as STANDALONE
from tinyprune.backends.tflm.backend import BACKEND as TFLM
from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError
from tinyprune.verify.fit import BoardFit, require_fit


def _refusal(fit, backend) -> TinypruneError:
    with pytest.raises(TinypruneError) as caught:
        require_fit(fit, backend.shrinks(BuildConfig()))
    return caught.value


def test_tflm_ram_overflow_names_every_part_and_never_offers_sparsity():
    fit = BoardFit("tiny", {"model": 19_040, "TFLM runtime and kernels": 60_000, "application": 4_000}, 1_000_000,
                   {"arena": 2_960, "arena margin": 1_024, "headroom": 16_384}, 16_000)
    error = _refusal(fit, TFLM)
    assert "RAM 20,368 B = arena 2,960 + arena margin 1,024 + headroom 16,384 > tiny's 16,000 B" in error.problem
    assert "over by 4,368 B" in error.problem and "flash" not in error.problem
    assert "--arena-margin" in error.fix and "--ram-headroom" in error.fix and "--backend standalone" in error.fix
    assert "--sparsity" not in error.fix and "--tflm-compression" not in error.fix  # they save no RAM here


def test_tflm_flash_overflow_offers_what_shrinks_a_flatbuffer_not_sparsity():
    fit = BoardFit("tiny", {"model": 19_040, "TFLM runtime and kernels": 60_000}, 50_000, {"arena": 2_960}, 1 << 20)
    error = _refusal(fit, TFLM)
    assert "--method structured" in error.fix and "--tflm-compression" in error.fix
    assert "--sparsity" not in error.fix and "--arena-margin" not in error.fix
    assert error.fix.endswith("or choose a board with more memory (tinyprune boards)")


def test_standalone_flash_overflow_offers_sparsity_where_it_pays():
    fit = BoardFit("tiny", {"model constants": 9_000, "code and other data": 6_000}, 10_000, {"arena": 1_280}, 1 << 20)
    error = _refusal(fit, STANDALONE)
    assert "--sparsity" in error.fix and "--clusters" in error.fix and "--backend" not in error.fix
