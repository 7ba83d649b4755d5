"""`tinyprune device-eval`: the test set run on the board itself, over the serial protocol.

The host sends each test input as the int8 bytes TFLM on the host was given, and compares the board's
int8 output with the host TFLM's, byte for byte: the board's TFLM is older than the host's and may
compute differently (the Arduino library mis-computes per-channel FULLY_CONNECTED, silently). The
figures go into the build's report beside the host's: on-device accuracy, bytes differing per
sample, latency per inference. Ctrl-C ends the run early and keeps what was measured."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.device import protocol
from tinyprune.device.build_folder import read_build, test_set
from tinyprune.device.emulator import EMULATED_PORT, emulated_build
from tinyprune.device.link import BoardLink
from tinyprune.errors import TinypruneError


@dataclass
class Measured:
    outputs: list[bytes] = field(default_factory=list)
    elapsed: list[int] = field(default_factory=list)  # timer ticks per inference
    stopped: str | None = None  # why the run ended before the last sample: "interrupted" or the problem
    error: TinypruneError | None = None  # the problem, raised once the measurement is saved


def measure(link: BoardLink, inputs: np.ndarray, progress=None) -> Measured:
    """Each input through the board, in order; Ctrl-C or a lost board ends it with what was measured."""
    measured = Measured()
    try:
        for index, sample in enumerate(inputs):
            result = link.infer(index & 0xFFFF, sample.tobytes())
            measured.outputs.append(result.output)
            measured.elapsed.append(result.elapsed)
            if progress is not None:
                progress(index + 1, len(inputs))
    except KeyboardInterrupt:
        measured.stopped = "interrupted"
    except TinypruneError as exc:
        measured.stopped = exc.problem
        measured.error = exc
    return measured


def summarise(info: protocol.Info, measured: Measured, host_outputs: np.ndarray, y: np.ndarray | None,
              task: str | None, graph, report: dict) -> dict:
    """The report's device section: accuracy on the board and on the host over the same samples (None
    without labels: a model taken as it is without data runs its self-test inputs), the bytes where they
    differ, latency per inference."""
    from tinyprune.verify.accuracy import int8_outputs_to_float, score

    count = len(measured.outputs)
    section = {"board": info.to_dict(), "samples": count, "samples_requested": len(host_outputs),
               "stopped": measured.stopped}
    if count == 0:
        return section
    board = np.stack([np.frombuffer(o, dtype=np.int8) for o in measured.outputs])
    host = host_outputs[:count].reshape(count, -1)
    differing = np.count_nonzero(board != host, axis=1)
    if y is None:
        section.update({"inputs": "self-test", "metric": None, "device": None, "host_tflm": None,
                        "host_tflm_whole_test_set": None})
    else:
        metric = score(int8_outputs_to_float(graph, board), y[:count], task, "device")
        host_score = score(int8_outputs_to_float(graph, host), y[:count], task, "host")
        section.update({"inputs": "test set", "metric": metric.metric, "device": metric.value,
                        "host_tflm": host_score.value,
                        "host_tflm_whole_test_set": (report.get("accuracy") or {}).get("tflm_int8")})
    seconds = np.array(measured.elapsed, dtype=np.float64) / info.timer_hz
    section.update({
        "differing_bytes": int(differing.sum()),
        "total_bytes": int(board.size),
        "differing_samples": int(np.count_nonzero(differing)),
        "differing_bytes_per_sample": [int(d) for d in differing],
        "max_abs_difference": int(np.abs(board.astype(np.int16) - host).max()),
        "latency_us": {"min": _us(seconds.min()), "median": _us(np.median(seconds)), "max": _us(seconds.max())},
        "latency_per_sample_us": [_us(s) for s in seconds],
    })
    if info.timer == protocol.TIMER_CYCLES:
        section["cycles"] = {"min": int(min(measured.elapsed)), "median": int(np.median(measured.elapsed)),
                             "max": int(max(measured.elapsed))}
    return section


def _us(seconds: float) -> float:
    return round(float(seconds) * 1e6, 1)


def device_eval(out_dir: str | Path, port: str, data: str | None = None, samples: int | None = None,
                timeout: float = 10.0, progress=None, arduino_library: str | None = None) -> dict:
    """Run the build's test set on the board at `port` ("qemu": the firmware on the board's qemu machine,
    the TFLM sketch built against `arduino_library` or the installed one); the device section, also
    written into the report. A model taken as it is without data runs its build's self-test inputs unless
    `data` is given: bytes and latency, no accuracy."""
    from tinyprune.graph.reader import read_graph
    from tinyprune.report import add_device_section
    from tinyprune.verify.accuracy import tflm_outputs

    report, model_bytes = read_build(out_dir)
    graph = read_graph(model_bytes)
    inputs, y, task = test_set(report, graph, data, samples)
    host = tflm_outputs(model_bytes, inputs.reshape(len(inputs), *graph.input_tensors()[0].shape[1:]))
    with ExitStack() as stack:
        if port == EMULATED_PORT:
            port_name = stack.enter_context(emulated_build(out_dir, report, arduino_library))
        else:
            port_name = port
        link = stack.enter_context(BoardLink.open(port_name, answer_seconds=timeout))
        info = link.hello()
        output_size = graph.output_tensors()[0].num_elements
        if (info.input_size, info.output_size) != (inputs.shape[1], output_size):
            raise TinypruneError(
                f"the board on {port} runs another model ({info.name!r}: {info.input_size} inputs, "
                f"{info.output_size} outputs; {out_dir} has {inputs.shape[1]} and {output_size})",
                f"flash this build first: tinyprune flash {out_dir} --port {port}")
        measured = measure(link, inputs, progress)
        counters = link.counters
    section = summarise(info, measured, host, y, task, graph, report)
    section.update({"port": port, "corrupt_frames": counters.corrupt_frames,
                    "rejected_requests": counters.rejected_requests, "timeouts": counters.timeouts})
    add_device_section(out_dir, "evaluation", section)
    if measured.error is not None:
        raise measured.error
    return section


def describe_evaluation(section: dict) -> str:
    """The one line the CLI prints."""
    if not section["samples"]:
        return f"no sample measured on {section['port']} ({section['stopped']})"
    def figure(value):
        return f"{value * 100:.2f} %" if section["metric"] == "accuracy" else f"MSE {value:.5g}"
    latency = section["latency_us"]
    if section["metric"] is None:
        line = (f"no accuracy: the build has no labelled data (give --data with labels); over {section['samples']} "
                f"self-test inputs")
    else:
        line = (f"{figure(section['device'])} on the board, {figure(section['host_tflm'])} in the host's TFLM over "
                f"{section['samples']} test samples")
    line += (f"; {section['differing_bytes']} of {section['total_bytes']:,} output bytes differ; "
             f"{latency['min']:,} / {latency['median']:,} / {latency['max']:,} us an inference (min / median / max)")
    if section["stopped"]:
        line += f"; stopped after {section['samples']} of {section['samples_requested']}: {section['stopped']}"
    return line
