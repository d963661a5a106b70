"""The `training` section of the config as a typed value, and the record of it that model files keep."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from zfrepro.errors import ConfigError

# training.lr_schedule's defaults; also what a partial lr_schedule (transfer.scratch.training, which the schema
# does not fill in) falls back to.
LR_SCHEDULE_DEFAULTS = {"kind": "step", "factor": 0.1, "patience": 2, "min_lr": 1.0e-5, "milestones": [6]}


@dataclass
class TrainConfig:
    """The `training` section of the config (see config/README.md for what each value encodes).

    The defaults are the schema's (workflow/schemas/config.schema.yaml; tests/test_defaults.py checks that they
    agree). The workflow always passes the whole section, so they only serve direct callers.
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    dropout: float = 0.5
    init: dict = field(default_factory=lambda: {"scheme": "gaussian", "std": 0.02})
    filter_radius: float | None = 0.04
    lr_schedule: dict = field(default_factory=lambda: dict(LR_SCHEDULE_DEFAULTS))
    checkpoint_epochs: list[int] = field(default_factory=lambda: [1, 2, 5])
    amp: bool = True
    channels_last: bool = True
    validate: bool = True  # the validation error after every epoch (the plateau schedule needs it)
    compile: bool = False  # torch.compile the network (opt-in: its first steps compile, and it needs a compiler)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"training.{unknown[0]}: unknown option; allowed: {', '.join(sorted(known))}")
        cfg = cls(**values)
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise ConfigError("training.epochs and training.batch_size must be at least 1")
        if cfg.lr_schedule.get("kind") not in ("plateau", "step", "none"):
            raise ConfigError("training.lr_schedule.kind must be one of plateau, step, none")
        if not cfg.validate and cfg.lr_schedule.get("kind") == "plateau":
            raise ConfigError("training.validate is false but training.lr_schedule.kind is plateau, which needs the "
                              "validation error: use a step schedule or validate")
        return cfg


def training_record(cfg: TrainConfig) -> dict:
    """The training section as the model files and the fingerprint record it: `compile` only when set, so that
    files of runs that do not compile stay as they were before the option existed."""
    record = dataclasses.asdict(cfg)
    if not cfg.compile:
        del record["compile"]
    return record
