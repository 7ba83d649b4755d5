"""Every build option in one place: its default, its meaning and its validation.

A build is one reproducible command: options come from a pipeline file (`tinyprune.toml`, flat keys
named as below), then CLI flags override them; the report records the resolved configuration."""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tinyprune.backends import get_backend
from tinyprune.errors import TinypruneError

METHODS = ("magnitude", "structured", "lottery", "lassonet")
QUANTIZATIONS = ("ptq", "qat")
TFLM_COMPRESSIONS = ("none", "lut", "prune", "auto")
PROOFS = ("none", "qemu")  # --prove: what the firmware is run on besides the host


@dataclass
class BuildConfig:
    model: str = "demo"  # a .keras/.h5 file or SavedModel folder; "demo" is the built-in digits CNN
    data: str = ""  # an .npz file, an image folder, a .csv table or a built-in set; digits unless a .tflite
    target: str = ""  # the label column of a .csv table
    board: str = "nano33ble"
    out: str = "build/tinyprune"
    force: bool = False  # replace an existing output folder
    name: str = ""  # the firmware's model name; default: the model file's stem
    method: str = "magnitude"
    sparsity: float = 0.75
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    schedule: str = "polynomial"  # TF-MOT PolynomialDecay or ConstantSparsity
    m_by_n: str = ""  # magnitude: "2:4" keeps exactly 2 weights in every group of 4 (TF-MOT sparsity_m_by_n)
    ratio: float = 0.5  # structured: share of units / filters removed in every prunable layer
    layer_ratio: dict[str, float] = field(default_factory=dict)  # structured: per layer
    criterion: str = "l1"  # structured: rank units by "l1" norm or by a trained-in "group_lasso" penalty
    sensitivity_scan: bool = False  # structured: spread `ratio` over layers by their measured sensitivity
    rounds: int = 4  # lottery: prune-retrain rounds
    prune_fraction: float = 0.4  # lottery: share of the remaining weights pruned each round
    rewind_epoch: int = 0  # lottery: survivors rewind to their weights at this epoch (0: the original ticket)
    max_features: int = 0  # lassonet: keep at most this many input features (0: the path's best)
    lassonet_m: float = 10.0  # lassonet: hierarchy coefficient M
    train_epochs: int = 0  # float training before pruning (the demo trains from scratch)
    fine_tune_epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    clusters: int = 0  # weight clustering after pruning (TF-MOT), k values per kernel; 0 = off
    quantize: str = "ptq"  # post-training, or quantization-aware fine-tuning that keeps zeros/clusters
    qat_epochs: int = 2
    calibration_samples: int = 200  # representative samples for int8 calibration
    tflm_compression: str = "none"  # TFLM's compressed tensors (DECODE): none, lut, prune or auto
    runtime: str = "arduino"  # the TFLM the firmware runs on: "arduino" (Chirale 2.0.0) or "tflm"
    backend: str = "tflm"
    arena_margin: int = 1024  # bytes added to the exact arena in the firmware
    prove: str = "none"  # "qemu": build the firmware for the board's core and run it on qemu (the TFLM sketch
    # against the installed Arduino library); its measured arena then replaces the estimate
    arduino_library: str = ""  # the Arduino library's folder for --prove qemu; default: where the IDE installs it
    ram_headroom: int = 16384  # bytes of RAM kept for stack, runtime objects and the sketch
    seed: int = 0

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
        if self.criterion not in ("l1", "group_lasso"):
            raise TinypruneError(f"unknown criterion {self.criterion!r}", "use l1 or group_lasso")
        if not 0.0 <= self.sparsity < 1.0:
            raise TinypruneError(f"sparsity {self.sparsity} is outside [0, 1)", "give a fraction such as 0.75")
        for layer, value in self.layer_sparsity.items():
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise TinypruneError(f"layer sparsity {layer}={value} is outside [0, 1)",
                                     "give a fraction such as dense_1=0.9")
        if self.method not in METHODS:
            raise TinypruneError(f"unknown pruning method {self.method!r}", f"use one of: {', '.join(METHODS)}")
        if self.layer_sparsity and (self.method not in ("magnitude", "structured") or self.m_by_n):
            how = f"--m-by-n {self.m_by_n}" if self.m_by_n else f"--method {self.method}"
            raise TinypruneError(f"--layer-sparsity does not apply with {how}",
                                 "drop --layer-sparsity, or use --method magnitude (or structured) without --m-by-n")
        for name, allowed in (("quantize", QUANTIZATIONS), ("tflm_compression", TFLM_COMPRESSIONS),
                              ("prove", PROOFS)):
            if getattr(self, name) not in allowed:
                raise TinypruneError(f"unknown {name} {getattr(self, name)!r}", f"use one of: {', '.join(allowed)}")
        if self.clusters and not 2 <= self.clusters <= 128:
            raise TinypruneError(f"clusters is {self.clusters}, outside 2..128",
                                 "give 4 to 32 clusters (16 keeps a 4-bit LUT index), or 0 for none")
        get_backend(self.backend)  # refuses an unknown name
        if self.backend == "standalone" and self.tflm_compression != "none":
            raise TinypruneError("--tflm-compression applies to the TFLM interpreter, not the standalone backend",
                                 "drop --tflm-compression: the standalone C stores sparse and clustered weights "
                                 "compressed by itself")
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
