"""Every build option in one place: its default, its meaning and its validation.

A build is one reproducible command: options come from a pipeline file (`tinyprune.toml`, flat keys
named as below), then CLI flags override them; the report records the resolved configuration."""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tinyprune.backends import backend_choices
from tinyprune.errors import TinypruneError

METHODS = ("magnitude", "structured", "lottery", "lassonet")
QUANTIZATIONS = ("ptq", "qat")
TFLM_COMPRESSIONS = ("none", "lut", "prune", "auto")
PROOFS = ("none", "qemu")  # --prove: what the firmware is run on besides the host
SCHEDULES = ("polynomial", "constant")
CRITERIA = ("l1", "group_lasso")


def option(default, help: str, *, choices=None, short: str | None = None, metavar: str | None = None):
    """A build option: its default and the one-line help `tinyprune build --help` shows with it."""
    metadata = {"help": help, "choices": choices, "short": short, "metavar": metavar}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class BuildConfig:
    model: str = option("demo", ".keras/.h5 file (tf-keras or Keras 3), SavedModel folder, or an int8 .tflite "
                        "taken as it is; demo: the built-in model for the data")
    data: str = option("", ".npz with x_train, y_train, x_test, y_test [, x_calib], a folder of images (one "
                       "subfolder a class), a .csv table (with --target), or a built-in set (default: digits; "
                       "none for an int8 .tflite)", short="-d")
    target: str = option("", "the label column of a .csv table given as --data", metavar="COLUMN")
    board: str = option("nano33ble", "board id (see `tinyprune boards`) or a board .toml file", short="-b")
    out: str = option("build/tinyprune", "output folder (written atomically)", short="-o")
    force: bool = option(False, "replace an existing output folder")
    name: str = option("", "model name in the firmware (a C identifier is derived from it; default: the "
                       "model file's stem)")
    method: str = option("magnitude", "pruning method", choices=METHODS)
    sparsity: float = option(0.75, "target sparsity of every prunable layer, in [0, 1)")
    layer_sparsity: dict[str, float] = option({}, "sparsity of one layer (repeatable)", metavar="LAYER=FRACTION")
    schedule: str = option("polynomial", "TF-MOT pruning schedule: PolynomialDecay or ConstantSparsity",
                           choices=SCHEDULES)
    m_by_n: str = option("", "magnitude: exactly M weights kept in every group of N (2:4; TF-MOT sparsity_m_by_n)",
                         metavar="M:N")
    ratio: float = option(0.5, "structured: share of units / filters removed in every prunable layer")
    layer_ratio: dict[str, float] = option({}, "structured: share removed in one layer (repeatable)",
                                           metavar="LAYER=FRACTION")
    criterion: str = option("l1", "structured: rank units by l1 norm or by a trained-in group_lasso penalty",
                            choices=CRITERIA)
    sensitivity_scan: bool = option(False, "structured: prune robust layers harder, measured per layer")
    rounds: int = option(4, "lottery: prune-retrain rounds")
    prune_fraction: float = option(0.4, "lottery: share of the remaining weights pruned each round")
    rewind_epoch: int = option(0, "lottery: survivors rewind to their weights at this epoch (0: the original ticket)")
    max_features: int = option(0, "lassonet: keep at most this many input features (0: the path's best)")
    lassonet_m: float = option(10.0, "lassonet: hierarchy coefficient M")
    train_epochs: int = option(0, "train the float model first for this many epochs (the built-in model: "
                               "from scratch, unless given)")
    fine_tune_epochs: int = option(10, "epochs of fine-tuning while pruning")
    batch_size: int = option(32, "batch size of training and fine-tuning")
    learning_rate: float = option(1e-3, "learning rate of training and fine-tuning")
    clusters: int = option(0, "cluster each kernel's weights into K values after pruning (TF-MOT); 0: off")
    quantize: str = option("ptq", "post-training quantization, or quantization-aware fine-tuning that keeps "
                           "zeros and clusters", choices=QUANTIZATIONS)
    qat_epochs: int = option(2, "epochs of quantization-aware fine-tuning")
    calibration_samples: int = option(200, "representative samples for int8 calibration")
    tflm_compression: str = option("none", "store weights in TFLM's compressed formats, decoded at run time "
                                   "(needs --runtime tflm)", choices=TFLM_COMPRESSIONS)
    weight_storage: str = option("fast", "standalone C weights: fast (per layer the smallest of dense, bitmask rows, "
                                 "LUT rows and 4-bit cluster indices beside a bitmask that is estimated no slower "
                                 "than dense) or smallest (also gap-coded positions and 2- or 3-bit indices: fewer "
                                 "flash bytes, several times the instructions)", choices=("fast", "smallest"))
    runtime: str = option("arduino", "the TFLM the firmware runs: arduino (Chirale_TensorFlowLite 2.0.0) or tflm")
    backend: str = option("auto", "firmware: standalone (generated C, no interpreter), tflm (the interpreter), "
                          "or auto: standalone where it has a kernel for every operator, TFLM otherwise, "
                          "and both where both build", choices=backend_choices())
    arena_margin: int = option(1024, "bytes added to the exact arena in the firmware")
    prove: str = option("none", "qemu: compile the firmware for the board's core (the TFLM sketch against the "
                         "installed Arduino library) and run it on qemu; its measured arena replaces the estimate. The "
                         "firmware must prove; one built beside it for comparison that does not is reported "
                         "\"not proven\"",
                         choices=PROOFS)
    arduino_library: str = option("", "the Arduino library's folder for --prove qemu (default: the IDE's libraries "
                                  "folder)", metavar="PATH")
    ram_headroom: int = option(16384, "bytes of RAM kept for stack, runtime objects and the sketch in the fit check")
    seed: int = option(0, "seed of every random choice (same seed, same bytes)")

    def __post_init__(self):
        """A Keras build needs data (the digits unless told); an int8 .tflite builds without any."""
        if not self.data and not self.model.endswith(".tflite"):
            self.data = "digits"

    def validate(self) -> "BuildConfig":
        """Refuse bad options before any work starts."""
        for name in ("ratio", "prune_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise TinypruneError(f"{name} {getattr(self, name)} is outside [0, 1)", f"give {name} as a fraction")
        if self.m_by_n and not (len(parts := self.m_by_n.split(":")) == 2 and all(p.isdigit() for p in parts)
                                and 0 < int(parts[0]) < int(parts[1])):
            raise TinypruneError(f"m_by_n {self.m_by_n!r} is not M:N with 0 < M < N", "give it as 2:4")
        if not 0.0 <= self.sparsity < 1.0:
            raise TinypruneError(f"sparsity {self.sparsity} is outside [0, 1)", "give a fraction such as 0.75")
        for layer, value in self.layer_sparsity.items():
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise TinypruneError(f"layer sparsity {layer}={value} is outside [0, 1)",
                                     "give a fraction such as dense_1=0.9")
        if self.layer_sparsity and (self.method not in ("magnitude", "structured") or self.m_by_n):
            how = f"--m-by-n {self.m_by_n}" if self.m_by_n else f"--method {self.method}"
            raise TinypruneError(f"--layer-sparsity does not apply with {how}",
                                 "drop --layer-sparsity, or use --method magnitude (or structured) without --m-by-n")
        for option_field in fields(self):
            allowed = option_field.metadata["choices"]
            if allowed and getattr(self, option_field.name) not in allowed:
                what = "pruning method" if option_field.name == "method" else option_field.name
                raise TinypruneError(f"unknown {what} {getattr(self, option_field.name)!r}",
                                     f"use one of: {', '.join(allowed)}")
        if self.clusters and not 2 <= self.clusters <= 128:
            raise TinypruneError(f"clusters is {self.clusters}, outside 2..128",
                                 "give 4 to 32 clusters (16 keeps a 4-bit LUT index), or 0 for none")
        for name in ("train_epochs", "fine_tune_epochs", "qat_epochs", "arena_margin", "ram_headroom", "seed",
                     "rounds", "rewind_epoch", "max_features"):
            if getattr(self, name) < 0:
                raise TinypruneError(f"{name} is {getattr(self, name)}, below zero", f"give {name} >= 0")
        for name in ("batch_size", "calibration_samples"):
            if getattr(self, name) < 1:
                raise TinypruneError(f"{name} is {getattr(self, name)}", f"give {name} >= 1")
        if not self.learning_rate > 0:
            raise TinypruneError(f"learning_rate is {self.learning_rate}", "give a positive learning rate")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def option_names() -> list[str]:
    return [f.name for f in fields(BuildConfig)]


def _coerce(name: str, value, default):
    """TOML and CLI values to the option's type, with a one-line error when they do not fit."""
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TinypruneError(f"option {name} = {value!r} is not a {expected.__name__}",
                             f"give {name} as a {expected.__name__}, like the default {default!r}")
    return value


def load_config(path: str | Path | None = None, **overrides) -> BuildConfig:
    """Defaults, then the pipeline file, then the overrides that are not None (CLI flags)."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise TinypruneError(f"pipeline file {path} does not exist", "check the path given to -c") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TinypruneError(f"pipeline file {path} is not valid TOML: {exc}",
                                 "fix the line it names (keys as in `tinyprune build --help`)") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values.get("model", "demo") == "demo":  # the built-in model starts untrained
        from tinyprune.demo import DEMO_EPOCHS

        values.setdefault("train_epochs", DEMO_EPOCHS)
    unknown = sorted(set(values) - set(option_names()))
    if unknown:
        raise TinypruneError(f"unknown option {', '.join(unknown)}", f"use options among: {', '.join(option_names())}")
    defaults = BuildConfig()
    coerced = {name: _coerce(name, value, getattr(defaults, name)) for name, value in values.items()}
    return BuildConfig(**coerced).validate()
