"""The call stack in the RAM fit, without TensorFlow or a cross compiler: GCC's call graph (.ci) read into a
static bound, the firmware's `stack` line read into the measured high-water mark, and both backends' fits
counting it (the qemu test that measures it is in test_standalone_cortex_m.py)."""
from types import SimpleNamespace

import pytest

from tinyprune.backends.standalone.proof import StandaloneProof, standalone_fit
from tinyprune.errors import TinypruneError
from tinyprune.toolchains.qemu import QemuOutput
from tinyprune.toolchains.stack import CallGraph, read_call_graph, stack_bound
from tinyprune.verify.fit import STACK, require_fit, stack_item

# what arm-none-eabi-gcc 12 -fcallgraph-info=su writes (trimmed): two files, each with a static `columns`
MODEL_CI = '''graph: { title: "model.c"
node: { title: "model_invoke" label: "model_invoke\\nmodel.c:292:6\\n16 bytes (static)" }
node: { title: "tp_gemm" label: "tp_gemm\\n/usr/include/tp_kernels.h:33:9" shape : ellipse }
node: { title: "tp_depthwise_conv2d" label: "tp_depthwise_conv2d\\ntp_kernels.h:40:9" shape : ellipse }
edge: { sourcename: "model_invoke" targetname: "tp_gemm" label: "model.c:300:5" }
edge: { sourcename: "model_invoke" targetname: "tp_depthwise_conv2d" label: "model.c:301:5" }
}
'''
GEMM_CI = '''graph: { title: "tp_gemm.c"
node: { title: "tp_gemm.c:columns" label: "columns\\ntp_gemm.c:100:13\\n216 bytes (static)" }
node: { title: "tp_gemm" label: "tp_gemm\\ntp_gemm.c:222:6\\n176 bytes (static)" }
node: { title: "memset" label: "memset\\n/usr/include/newlib/string.h:33:9" shape : ellipse }
edge: { sourcename: "tp_gemm" targetname: "memset" label: "tp_gemm.c:204:17" }
edge: { sourcename: "tp_gemm" targetname: "tp_gemm.c:columns" label: "tp_gemm.c:234:13" }
}
'''
DEPTHWISE_CI = '''graph: { title: "tp_depthwise_conv2d.c"
node: { title: "tp_depthwise_conv2d.c:columns" label: "columns\\ntp_depthwise_conv2d.c:80:13\\n8 bytes (static)" }
node: { title: "tp_depthwise_conv2d" label: "tp_depthwise_conv2d\\ntp_depthwise_conv2d.c:300:6\\n560 bytes (static)" }
edge: { sourcename: "tp_depthwise_conv2d" targetname: "tp_depthwise_conv2d.c:columns" label: "x" }
}
'''
STARTUP_CI = '''graph: { title: "startup.c"
node: { title: "Reset_Handler" label: "Reset_Handler\\nstartup.c:37:6\\n64 bytes (static)" }
node: { title: "main" label: "main\\nmain.c:89:5" shape : ellipse }
node: { title: "__indirect_call" label: "Indirect Call Placeholder" shape : ellipse }
edge: { sourcename: "Reset_Handler" targetname: "__indirect_call" label: "startup.c:53:10" }
edge: { sourcename: "Reset_Handler" targetname: "main" label: "startup.c:55:5" }
}
'''
MAIN_CI = '''node: { title: "main" label: "main\\nmain.c:89:5\\n32 bytes (dynamic,bounded)" }
edge: { sourcename: "main" targetname: "model_invoke" label: "main.c:100:9" }
'''


def call_graph(*texts: str) -> CallGraph:
    graph = CallGraph()
    for text in texts:
        graph.add(text)
    return graph


def test_the_bound_is_the_deepest_chain_of_frames_across_files():
    graph = call_graph(MODEL_CI, GEMM_CI, DEPTHWISE_CI)
    bound = stack_bound(graph, "model_invoke")
    # gemm: 16 + 176 + 216 = 408; depthwise: 16 + 560 + 8 = 584 (its static `columns` is its own, not gemm's)
    assert (bound.bytes, bound.chain) == (584, ["model_invoke", "tp_depthwise_conv2d", "tp_depthwise_conv2d.c:columns"])
    assert bound.unknown == ["memset"] and not bound.complete
    assert "584 B from model_invoke (model_invoke > tp_depthwise_conv2d > columns)" in bound.describe()
    assert "memset not counted" in bound.describe()
    assert stack_bound(call_graph(MODEL_CI, GEMM_CI), "model_invoke").bytes == 408  # no depthwise frame: 408


def test_the_whole_firmware_says_what_it_could_not_follow():
    bound = stack_bound(call_graph(STARTUP_CI, MAIN_CI, MODEL_CI, GEMM_CI, DEPTHWISE_CI), "Reset_Handler")
    assert bound.bytes == 64 + 32 + 584
    assert (bound.indirect, bound.dynamic, bound.unknown) == (["Reset_Handler"], ["main"], ["memset"])
    assert "calls through pointers in Reset_Handler not followed" in bound.describe()


def test_recursion_is_counted_once_and_said():
    ring = '''node: { title: "a" label: "a\\na.c:1:1\\n8 bytes (static)" }
node: { title: "b" label: "b\\na.c:2:1\\n16 bytes (static)" }
edge: { sourcename: "a" targetname: "b" }
edge: { sourcename: "b" targetname: "a" }
'''
    bound = stack_bound(call_graph(ring), "a")
    assert bound.bytes == 24 and bound.recursive and "recursion counted once" in bound.describe()


def test_the_call_graph_is_read_from_a_builds_ci_files(tmp_path):
    (tmp_path / "firmware.elf-model.ci").write_text(MODEL_CI)
    (tmp_path / "firmware.elf-tp_gemm.ci").write_text(GEMM_CI)
    assert stack_bound(read_call_graph(tmp_path), "model_invoke").bytes == 408


def test_the_firmwares_stack_line_is_read():
    run = QemuOutput(["calibration 0000c350", "done", "stack 000001f4 0003ff80 00000010"], 0, [], "mps2-an386")
    assert run.stack_bytes() == (500, 0x3FF80, 16)
    assert QemuOutput(["done"], 0, [], "mps2-an386").stack_bytes() is None


BOARD = SimpleNamespace(name="tiny", core="cortex-m4", flash_bytes=1 << 20, ram_bytes=8192)
MODEL = SimpleNamespace(constant_bytes=1000, arena_bytes=2000)


def proof(stack_bytes: int) -> StandaloneProof:
    return StandaloneProof({}, 1, 0, firmware={"flash_bytes": 5000, "ram_bytes": 2400, "stack_bound": "static bound"},
                           qemu={"samples": 2, "machine": "mps2-an386", "stack_bytes": stack_bytes})


def test_the_standalone_fit_counts_the_measured_stack_and_says_so():
    fit = standalone_fit(MODEL, proof(600), BOARD, 1024, sketch_buffers=100)
    assert fit.ram_items == {"arena": 2000, "other data and bss": 400, STACK: 600, "sketch buffers": 100,
                             "headroom": 1024}
    assert fit.ram_needed == 4124 and fit.ram_basis.startswith("stack measured: the high-water mark of the bare-metal")
    assert "over 2 inferences on qemu mps2-an386" in fit.ram_basis and "static bound" in fit.ram_basis


def test_without_a_run_the_stack_is_said_to_be_missing_not_guessed():
    fit = standalone_fit(MODEL, None, BOARD, 1024)
    assert STACK not in fit.ram_items
    assert fit.ram_basis == "the call stack is not included: no firmware ran for cortex-m4 to measure it"
    assert stack_item(0, "cortex-m0plus", "") == ({}, "the call stack is not included: no firmware ran for "
                                                      "cortex-m0plus to measure it")


def test_a_board_whose_ram_the_stack_eats_does_not_fit():
    require_fit(standalone_fit(MODEL, proof(600), BOARD, 1024))  # 5,024 B of 8,192: fits
    with pytest.raises(TinypruneError) as error:
        require_fit(standalone_fit(MODEL, proof(5000), BOARD, 1024))
    assert "RAM 8,424 B = arena 2,000 + other data and bss 400 + stack 5,000 + headroom 1,024 > tiny's 8,192 B" \
        in error.value.problem


def test_the_tflm_fit_counts_the_sketchs_measured_stack_and_heap():
    """backends/tflm's fit (board_fit) with --prove qemu's figures: both items, said measured; without, neither."""
    from fixture_models import fixture_bytes, fixture_names
    from tinyprune.boards import load_board
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.fit import board_fit

    graph, board = read_graph(fixture_bytes(fixture_names()[0])), load_board("nano33ble")
    fit = board_fit(graph, board, "arduino", 3000, 16384, 1024, 372, stack_bytes=852, heap_bytes=2644,
                    stack_measured_on="the sketch's firmware on qemu mps2-an386")
    assert fit.ram_items == {"arena": 3000, "arena margin": 1024, STACK: 852, "heap": 2644, "sketch buffers": 372,
                             "headroom": 16384}
    assert fit.ram_basis == ("stack measured: the high-water mark of the sketch's firmware on qemu mps2-an386; heap: "
                             "what the same firmware took with malloc (the C library's, the C++ runtime's)")
    unmeasured = board_fit(graph, board, "arduino", 3000, 16384)
    assert STACK not in unmeasured.ram_items and "not included" in unmeasured.ram_basis


MEMSET_CODE = """
     f00:\t0783      \tlsls\tr3, r0, #30
     f02:\tb530      \tpush\t{r4, r5, lr}
     f04:\td047      \tbeq.n\tf96 <memset+0x96>
     f06:\tb082      \tsub\tsp, #8
     f08:\ted2d 8b04 \tvpush\t{d8-d9}
     f0c:\te92d 41f0 \tstmdb\tsp!, {r4, r5, r6, r7, r8, lr}
     f10:\te001      \tb.n\tf16 <memset+0x16>
"""


def test_a_library_functions_frame_is_read_from_its_code():
    """newlib's functions come without a .ci figure: what their code pushes and subtracts from sp (12 + 8 +
    16 + 24 here), or nothing claimed when they call on."""
    from tinyprune.toolchains.stack import code_frame

    assert code_frame("memset", MEMSET_CODE) == 12 + 8 + 16 + 24
    assert code_frame("memset", MEMSET_CODE + "     f12:\tf000 f801 \tbl\t1000 <__errno>\n") is None
    assert code_frame("memset", MEMSET_CODE + "     f12:\tf000 b801 \tb.w\t1000 <memmove>\n") is None
    assert code_frame("memset", MEMSET_CODE + "     f12:\t4798      \tblx\tr3\n") is None


def test_a_firmware_built_but_not_run_counts_gccs_static_bound_and_says_so():
    built = StandaloneProof({}, 1, 0, firmware={"flash_bytes": 5000, "ram_bytes": 2400, "stack_bound_bytes": 620,
                                                "stack_bound": "static bound 620 B from Reset_Handler (...)"})
    fit = standalone_fit(MODEL, built, BOARD, 1024)
    assert fit.ram_items[STACK] == 620
    assert fit.ram_basis == ("stack not measured (the firmware did not run): the bare-metal firmware's static bound "
                             "620 B from Reset_Handler (...)")
