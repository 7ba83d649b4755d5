"""The stage functions the pipeline sequences, each from one artefact to the next, with the one-line
summary the CLI prints for it. The real work lives in the stage packages (prune/, quantize.py,
graph/, verify/, backends/, report/); this module turns a BuildConfig into their arguments."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tinyprune.config import BuildConfig
from tinyprune.backends.base import Build, Target
from tinyprune.errors import TinypruneError
from tinyprune.io.data import Dataset
from tinyprune.graph.ir import Graph
from tinyprune.prune.result import PruneResult
from tinyprune.verify.accuracy import Agreement, Score


@dataclass
class Loaded:
    model: object
    data: Dataset
    name: str  # a C identifier for the firmware
    source: str


@dataclass
class Trained:
    loaded: Loaded
    model: object
    score: Score
    test_outputs: np.ndarray  # the float model's outputs on the test set


@dataclass
class Pruned:
    result: PruneResult
    score: Score
    data: Dataset  # what the pruned model reads (LassoNet keeps only the selected input features)


@dataclass
class Quantized:
    model_bytes: bytes  # what the firmware carries (TFLM-compressed when asked)
    uncompressed_bytes: bytes  # the int8 model before TFLM compression (LiteRT cannot run DECODE)
    dense_bytes: bytes  # the unpruned model converted the same way, for comparison
    calibration_samples: int
    per_channel_dense: bool
    per_channel: bool  # False when clustered: one scale a tensor keeps k clusters as k int8 values
    qat: dict | None = None  # the QAT fine-tuning's details (--quantize qat)
    passes: list = field(default_factory=list)  # tinyprune.graph.passes.PassRecord, in the order they ran

    @property
    def compression(self) -> dict | None:
        """compress_for_tflm's report (--tflm-compression), or None."""
        from tinyprune.graph.passes.tflm_compression import NAME

        return next((p.details for p in self.passes if p.name == NAME), None)


@dataclass
class Checked:
    quantized: Quantized
    graph: Graph
    builds: list[Build]  # the firmware first, then the builds beside it for comparison
    refused: dict[str, str]  # backend name -> why it builds no firmware here

    @property
    def ops(self):
        """The op check (tinyprune.graph.check.OpCheck) against the firmware's runtime."""
        return self.builds[0].ops


@dataclass
class Verified:
    checked: Checked
    arena: object  # tinyprune.verify.arena.ArenaSearch: the host arena found by running TFLM
    host_arena: object  # tinyprune.memory.ArenaEstimate: the same figure, emulated
    scores: list[Score]
    agreement: Agreement
    confusion: list[list[int]] | None  # classification: float model's class (rows) vs TFLM's (columns)

    @property
    def builds(self) -> list[Build]:
        """Every backend's firmware, written, proven and fitted; the first is the recommended one."""
        return self.checked.builds

    @property
    def memory(self):
        return self.builds[0].memory

    @property
    def fit(self):
        return self.builds[0].fit


def resolve_target(config: BuildConfig) -> Target:
    """The board and the backends that can build for it, checked before anything is trained."""
    from tinyprune.backends import AUTO, backend_names, get_backend
    from tinyprune.backends.base import Candidate
    from tinyprune.boards import load_board

    board = load_board(config.board)
    candidates, refusals = [], {}
    for name in backend_names() if config.backend == AUTO else (config.backend,):
        backend = get_backend(name)
        runtime = backend.runtime(config)
        try:
            backend.check_target(board, runtime, config)
        except TinypruneError as exc:
            if config.backend != AUTO:
                raise
            refusals[name] = exc
            continue
        candidates.append(Candidate(backend, runtime))
    if not candidates:
        raise TinypruneError(f"no backend builds for {board.title}: "
                             + "; ".join(f"{name}: {exc.problem}" for name, exc in refusals.items()),
                             "; ".join(f"{name}: {exc.fix}" for name, exc in refusals.items()))
    return Target(board, candidates, {name: exc.problem for name, exc in refusals.items()}, config.backend == AUTO)


# -- load ---------------------------------------------------------------------------------------------

def load(config: BuildConfig) -> Loaded:
    from tinyprune.backends.templates import c_identifier
    from tinyprune.io.data import load_dataset, validate
    from tinyprune.io.keras2 import input_shape, load_model, output_units, require_training_side
    from tinyprune.io.keras3 import prove_translation, written_by_keras3

    require_training_side()
    from tinyprune.train import seed_everything

    seed_everything(config.seed)
    model = None if config.model == "demo" else load_model(config.model)
    data = load_dataset(config.data, config.seed, config.target, None if model is None else input_shape(model))
    if config.model == "demo":  # the built-in model for the data: a CNN for images, an MLP for features
        from tinyprune.demo import demo_cnn, demo_mlp

        outputs = data.classes if data.task == "classification" else int(np.prod(data.y_train.shape[1:]))
        if data.x_train.ndim == 2:
            model, source = demo_mlp(data.x_train.shape[1], outputs, config.seed), "built-in MLP"
        else:
            model = demo_cnn(input_shape=data.x_train.shape[1:], classes=outputs, seed=config.seed)
            source = "built-in CNN" if data.name != "digits" else "built-in digits CNN"
    else:
        source = config.model
    validate(data, input_shape(model), output_units(model), config.calibration_samples)
    if config.model != "demo" and written_by_keras3(Path(config.model)):
        source += f" ({prove_translation(Path(config.model), model, data.x_test)})"
    name = c_identifier(config.name or Path(config.model).stem)
    return Loaded(model, data, name, source)


def describe_load(loaded: Loaded) -> str:
    data = loaded.data
    return (f"{loaded.source}: {loaded.model.count_params():,} parameters; {data.name}: "
            f"{len(data.x_train):,} train / {len(data.x_test):,} test samples, {data.task}"
            + "".join(f"; {note}" for note in data.notes))


# -- train / prune ------------------------------------------------------------------------------------

def _evaluate(model, data: Dataset, stage: str) -> tuple[Score, np.ndarray]:
    from tinyprune.verify.accuracy import keras_outputs, score

    outputs = keras_outputs(model, data.x_test)
    return score(outputs, data.y_test, data.task, stage), outputs


def train_float(loaded: Loaded, config: BuildConfig, progress) -> Trained:
    """Train the float model first when asked (the demo starts from scratch), then score it."""
    from tinyprune.train import compile_for_task, fit

    if config.train_epochs:
        compile_for_task(loaded.model, loaded.data.task, config.learning_rate)
        fit(loaded.model, loaded.data.x_train, loaded.data.y_train, config.train_epochs, config.batch_size,
            "train", progress)
    return Trained(loaded, loaded.model, *_evaluate(loaded.model, loaded.data, "float"))


def describe_score(score: Score) -> str:
    return f"{score.metric} {score.value:.2%}" if score.metric == "accuracy" else f"MSE {score.value:.5g}"


def describe_train(trained: Trained) -> str:
    return f"float model: {describe_score(trained.score)} on the test set"


def prune(trained: Trained, config: BuildConfig, progress) -> Pruned:
    """The pruning method, then weight clustering of what remains when --clusters is set."""
    from tinyprune.prune import run_method

    result, data = run_method(trained.model, trained.loaded.data, config, progress)
    if config.clusters:
        from tinyprune.prune.cluster import cluster

        clustered = cluster(result.model, data, config.clusters, epochs=max(config.fine_tune_epochs, 1),
                            batch_size=config.batch_size, preserve_sparsity=config.sparsity > 0, progress=progress)
        result.details["clustering"] = clustered.details
        result = PruneResult(clustered.model, f"{result.method} + clustering", result.details,
                             result.history + clustered.history)
    return Pruned(result, _evaluate(result.model, data, "pruned")[0], data)


def describe_prune(pruned: Pruned) -> str:
    from tinyprune.prune.result import count_macs, kernel_weight_counts

    nonzero, total = kernel_weight_counts(pruned.result.model)
    line = f"{pruned.result.method}: {nonzero:,} non-zero of {total:,} kernel weights ({1 - nonzero / total:.1%} zero)"
    if pruned.result.method != "magnitude":
        line += f", {count_macs(pruned.result.model):,} MACs"
    kept = pruned.result.details.get("kept_features")
    if kept:
        line += f", {len(kept['indices'])} input features kept"
    not_pruned = pruned.result.details.get("not_pruned") or pruned.result.details.get(
        "then_magnitude", {}).get("not_pruned")
    if not_pruned:
        line += "; not pruned: " + ", ".join(f"{layer} ({why})" for layer, why in not_pruned.items())
    return line + f"; pruned model {describe_score(pruned.score)}"


# -- quantize / check ---------------------------------------------------------------------------------

def quantize(pruned: Pruned, trained: Trained, config: BuildConfig, target: Target, progress) -> Quantized:
    """Full-int8 conversion of the pruned and of the dense model, as the target runtime needs them;
    QAT first and TFLM compression after, when asked."""
    from tinyprune.graph.passes.per_tensor_dense import per_tensor_dense
    from tinyprune.graph.passes.per_tensor_weights import per_tensor_weights
    from tinyprune.graph.passes.tflm_compression import tflm_compression
    from tinyprune.quantize import quantize_int8, representative_samples

    data = pruned.data
    calibration = representative_samples(data.calibration, config.calibration_samples, config.seed)
    weights_pass = per_tensor_weights(config.clusters)
    dense_pass = None if weights_pass else per_tensor_dense(target.runtime)
    per_channel = weights_pass is None
    per_channel_dense = per_channel and dense_pass is None
    model, qat = pruned.result.model, None
    if config.quantize == "qat":
        from tinyprune.qat import quantize_aware

        keeps = "clusters" if config.clusters else "sparsity"
        preserve = "clusters+sparsity" if config.clusters and config.sparsity > 0 else keeps
        trained_qat = quantize_aware(model, data, preserve=preserve, epochs=config.qat_epochs,
                                     batch_size=config.batch_size, progress=progress)
        model, qat = trained_qat.model, trained_qat.details
    uncompressed = model_bytes = quantize_int8(model, calibration, per_channel_dense, per_channel)
    model_bytes, compression_pass = tflm_compression(model_bytes, config.tflm_compression, data.x_test)
    return Quantized(
        model_bytes=model_bytes,
        uncompressed_bytes=uncompressed,
        dense_bytes=quantize_int8(trained.model, representative_samples(
            trained.loaded.data.calibration, config.calibration_samples, config.seed), per_channel_dense, per_channel),
        calibration_samples=len(calibration),
        per_channel_dense=per_channel_dense,
        per_channel=per_channel,
        qat=qat,
        passes=[p for p in (weights_pass, dense_pass, compression_pass) if p is not None],
    )


def describe_quantize(quantized: Quantized) -> str:
    from tinyprune.sizes import gzip_size

    # a clustered model has one scale a tensor everywhere, not only in its dense layers
    scales = ("per-tensor weights" if not quantized.per_channel
              else f"{'per-channel' if quantized.per_channel_dense else 'per-tensor'} FULLY_CONNECTED")
    line = (f"full-int8 TFLite {len(quantized.model_bytes):,} B (gzip {gzip_size(quantized.model_bytes):,} B; "
            f"dense {len(quantized.dense_bytes):,} B, gzip {gzip_size(quantized.dense_bytes):,} B), "
            f"{scales}, {quantized.calibration_samples} calibration samples")
    if quantized.passes:
        line += f"; passes: {', '.join(p.name for p in quantized.passes)}"
    if quantized.qat:
        line += f", QAT keeping {quantized.qat['preserve']}"
    if quantized.compression:
        c = quantized.compression
        line += (f"; TFLM {c['mode']} compression: {c['bytes_before']:,} -> {c['bytes_after']:,} B, "
                 f"{c['decoded_tensors']} tensors decoded at run time")
    return line


def firmware_builds(graph: Graph, target: Target) -> tuple[list[Build], dict[str, str], dict[str, TinypruneError]]:
    """The candidate backends that have a kernel for every operator of `graph`, as builds in order of
    preference: the first is the firmware (at the output root), the others are built beside it for
    comparison. Also why each other backend builds nothing (target refusals too), and the check errors."""
    from tinyprune.compress import check_compression_support
    from tinyprune.graph.check import check_graph

    builds, errors = [], {}
    for candidate in target.candidates:
        try:
            check_compression_support(graph, candidate.runtime)
            ops = check_graph(graph, candidate.runtime)
            candidate.backend.check(graph)
        except TinypruneError as exc:
            errors[candidate.backend.name] = exc
            continue
        builds.append(Build(candidate.backend, target.board, candidate.runtime, ops, "", folder=candidate.backend.name))
    refused = {**target.refused, **{name: exc.problem for name, exc in errors.items()}}
    if builds:
        firmware = builds[0]
        firmware.folder = ""
        if not target.auto:
            firmware.why = f"{firmware.backend.name} (as --backend asks)"
        else:
            firmware.why = (f"{firmware.backend.name} (--backend auto): it has a kernel for every operator of the "
                            f"model and builds for {target.board.title}'s {target.board.core}"
                            + "".join(f"; not {name}: {why}" for name, why in refused.items()))
        for other in builds[1:]:
            other.why = f"{other.backend.name}: built beside it for comparison, in {other.folder}/"
    return builds, refused, errors


def no_firmware_error(errors: dict[str, TinypruneError], board) -> TinypruneError:
    """Why no candidate backend can run the model: the one backend's own error, or each one's."""
    if len(errors) == 1:
        return next(iter(errors.values()))
    return TinypruneError(f"no backend can run this model on {board.title}: "
                          + "; ".join(f"{name}: {exc.problem}" for name, exc in errors.items()),
                          "; ".join(f"{name}: {exc.fix}" for name, exc in errors.items()))


def check(quantized: Quantized, target: Target) -> Checked:
    """The int8 graph against each candidate backend: the first that has a kernel for every operator
    builds the firmware, the others that can are built beside it for comparison."""
    from tinyprune.graph.reader import read_graph

    graph = read_graph(quantized.model_bytes)
    builds, refused, errors = firmware_builds(graph, target)
    if not builds:
        raise no_firmware_error(errors, target.board)
    return Checked(quantized, graph, builds, refused)


def describe_check(checked: Checked) -> str:
    from tinyprune.sizes import counted

    return (f"{counted(len(checked.graph.operators), 'operator')}, {counted(len(checked.graph.op_names), 'kind')} "
            f"({', '.join(checked.graph.op_names)}), all supported by {checked.ops.runtime.title}; firmware "
            + "; ".join(build.why for build in checked.builds))


# -- verify -------------------------------------------------------------------------------------------

@dataclass
class Int8Run:
    """What running the int8 model on its test inputs established: the arena and TFLM's and LiteRT's
    outputs; each backend's build (checked.builds) written, proven and fitted on the way."""

    arena: object  # tinyprune.verify.arena.ArenaSearch
    host_arena: object  # tinyprune.memory.ArenaEstimate
    tflm: np.ndarray
    litert: np.ndarray


def run_int8(checked: Checked, x_int8: np.ndarray, config: BuildConfig, target: Target, name: str,
             folder: Path) -> Int8Run:
    """The exact arena, TFLM's and LiteRT's outputs on x_int8; each backend's firmware written into `folder`
    (its self-test: the first inputs and TFLM's outputs), proven against TFLM and fitted to the board (the
    recommended one must fit and prove; a build beside it for comparison that does not prove is reported so)."""
    from tinyprune.backends.base import TEST_VECTORS, Job
    from tinyprune.memory import emulate_arena
    from tinyprune.verify.accuracy import litert_outputs, tflm_outputs
    from tinyprune.verify.arena import find_arena
    from tinyprune.verify.fit import require_fit

    graph = checked.graph
    model_bytes = checked.quantized.model_bytes
    arena = find_arena(model_bytes)  # the real interpreter's figure: cross-checks the emulation
    host_arena = emulate_arena(graph, "host")
    tflm = tflm_outputs(model_bytes, x_int8, arena.aligned16)
    job = Job(graph, model_bytes, name, x_int8[:TEST_VECTORS], tflm[:TEST_VECTORS])
    for build in checked.builds:
        build.memory = build.backend.memory(graph, build, arena, config)
        build.generated = build.backend.generate(job, build, build.memory, folder / build.folder)
        estimate = build.backend.fit(graph, build, build.memory, build.generated, None, config)
        if build is checked.builds[0]:
            require_fit(estimate, build.backend.shrinks(config))  # before the slower proof
    litert = litert_outputs(checked.quantized.uncompressed_bytes, x_int8)
    for build in checked.builds:
        try:
            build.proof = build.backend.prove(build.generated, build, x_int8, tflm, config)
        except TinypruneError as exc:
            if build is checked.builds[0]:
                raise  # the recommended firmware must be proven
            build.proof_failure = exc.problem  # a comparison's failure is reported beside it, not fatal
        measured = build.backend.measured_memory(build.memory, build.proof, config)
        if measured is not None:  # the firmware declares the measured arena, not the estimate
            build.memory = measured
            for part in build.generated.folders.values():
                shutil.rmtree(part)
            build.generated = build.backend.generate(job, build, build.memory, folder / build.folder)
        build.fit = build.backend.fit(graph, build, build.memory, build.generated, build.proof, config)
    require_fit(checked.builds[0].fit, checked.builds[0].backend.shrinks(config))
    return Int8Run(arena, host_arena, tflm, litert)


def verify(checked: Checked, pruned: Pruned, trained: Trained, config: BuildConfig, target: Target,
           name: str, folder: Path) -> Verified:
    """Scores per stage, LiteRT-vs-TFLM agreement, the exact arena; each backend's firmware written into
    `folder`, proven against TFLM and fitted to the board."""
    from tinyprune.verify.accuracy import confusion_matrix, int8_inputs, int8_outputs_to_float, score

    data, graph = pruned.data, checked.graph
    x_int8 = int8_inputs(graph, data.x_test)
    run = run_int8(checked, x_int8, config, target, name, folder)
    confusion = None
    if data.task == "classification":
        confusion = confusion_matrix(trained.test_outputs, run.tflm, data.classes)
    scores = [
        trained.score,
        pruned.score,
        score(int8_outputs_to_float(graph, run.litert), data.y_test, data.task, "litert_int8"),
        score(int8_outputs_to_float(graph, run.tflm), data.y_test, data.task, "tflm_int8"),
    ]
    return Verified(checked, run.arena, run.host_arena, scores, agreement_of(checked, x_int8, run), confusion)


def agreement_of(checked: Checked, x_int8: np.ndarray, run: Int8Run):
    """LiteRT's outputs against TFLM's on x_int8 and, when they differ, where the two first part ways."""
    from tinyprune.verify.accuracy import agreement

    agreed = agreement(run.litert, run.tflm)
    if agreed.differing_bytes:
        agreed = replace(agreed, first_difference=layer_divergence(checked, x_int8, run))
    return agreed


def layer_divergence(checked: Checked, x_int8: np.ndarray, run: Int8Run) -> str:
    """Where LiteRT and TFLM part ways, on the inputs whose outputs differ (at most 32 of them)."""
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.layers import first_divergence

    differing = np.flatnonzero((run.litert != run.tflm).reshape(len(run.tflm), -1).any(axis=1))[:32]
    uncompressed = checked.quantized.uncompressed_bytes  # what LiteRT ran: its own graph, not the DECODE one
    divergence = first_divergence(uncompressed, read_graph(uncompressed), x_int8[differing])
    return divergence.describe() if divergence else "every operator's output agrees when all are outputs"


def describe_verify(verified: Verified) -> str:
    by_stage = {s.stage: s for s in verified.scores}
    a = verified.agreement
    line = (f"TFLM int8 {describe_score(by_stage['tflm_int8'])} (LiteRT {describe_score(by_stage['litert_int8'])}; "
            if "tflm_int8" in by_stage else "no data, no accuracy (LiteRT vs TFLM on the self-test inputs: ")
    line += f"{a.differing_bytes:,} of {a.total_bytes:,} output bytes differ); arena {verified.arena.aligned16:,} B on the host"
    for build in verified.builds:
        proven = build.backend.describe_proof(build.proof) if build.proof is not None else ""
        if build.proof_failure:
            proven = f"not proven: {build.proof_failure}"
        line += (f"; {build.backend.name}{' (beside it)' if build.folder else ''}: {proven + ', ' if proven else ''}"
                 f"arena {build.memory.arena_firmware:,} B, flash {build.fit.flash_needed:,} / "
                 f"{build.fit.flash_limit:,} B, RAM {build.fit.ram_needed:,} / {build.fit.ram_limit:,} B")
    return line


# -- export / report ----------------------------------------------------------------------------------

def export(verified: Verified, staging: Path) -> list[str]:
    """model.tflite beside the firmware verify generated and proved (each backend's); paths relative to the
    output folder."""
    (staging / "model.tflite").write_bytes(verified.checked.quantized.model_bytes)
    written = [staging / "model.tflite", *(p for build in verified.builds for p in build.generated.files())]
    return sorted(str(p.relative_to(staging)) for p in written)


def describe_export(files: list[str]) -> str:
    return f"{len(files)} files: " + ", ".join(sorted({f.split('/')[0] for f in files}))
