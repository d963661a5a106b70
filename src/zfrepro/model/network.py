"""The one configurable convnet, built from an `ArchSpec` (zfrepro.model.spec): modules named by the spec's
layers, a training forward without recording and a recording forward for the deconvnet and the analyses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zfrepro.errors import ConfigError
from zfrepro.model.spec import CLASSIFIER, ArchSpec, PoolSpec, fc6_in_features, is_number, validate_spec


@dataclass
class Record:
    """What forward_record keeps, keyed by layer name (what the deconvnet and the analyses need).

    outputs: every layer's output (conv blocks after all their ops; fc6/fc7 after ReLU, before dropout;
             fc8 = logits). rectified: each conv layer's post-ReLU map (before its pool/norm).
    switches: max-pool argmax indices (F.max_pool2d(return_indices=True); feed to F.max_unpool2d with
             output_size=pool_input_shape[name][-2:]). pool_input_shape: the pooled tensor's shape.
    conv_input_shape: the input shape of each conv (for conv_transpose2d's output size).
    ops: each conv block's op order (ConvSpec.ops).
    """

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    rectified: dict[str, torch.Tensor] = field(default_factory=dict)
    switches: dict[str, torch.Tensor] = field(default_factory=dict)
    pool_input_shape: dict[str, torch.Size] = field(default_factory=dict)
    conv_input_shape: dict[str, torch.Size] = field(default_factory=dict)
    ops: dict[str, tuple[str, ...]] = field(default_factory=dict)


class BandedLRN(nn.LocalResponseNorm):
    """torch's LocalResponseNorm (same parameters, same function, equal to it to rounding in the tests), with the
    window sum of x^2 over channels taken as `size` shifted slices of the zero-padded squares. torch pads and
    average-pools a 5-D view instead, which made LRN about a third of a CPU training step of the default
    networks; this is 2-2.5x faster forward and backward, and elementwise, so independent of the batch. On a GPU
    and for bf16/fp16 inputs it takes `_pooled` instead (fewer kernels, float32 reduction, the input's dtype)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
            return self._pooled(x)
        channels = x.shape[1]
        squares = F.pad(x * x, (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
        total = squares[:, :channels]
        for offset in range(1, self.size):
            total = total + squares[:, offset:offset + channels]
        return x / (total / self.size).mul(self.alpha).add(self.k).pow(self.beta)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The GPU and reduced-precision path: the window mean of x^2 as one average pool over channels, all in
        float32 (x^2 summed in bf16 loses most of its bits), and the result in x's dtype, so that bf16
        activations stay bf16 into the pooling and conv2 (CUDA autocast would otherwise run pow in float32 and
        hand float32 on). About 8 kernels where the slices take 11."""
        wide = x if x.dtype == torch.float64 else x.float()
        squares = (wide * wide).unsqueeze(1)  # [B, 1, C, H, W]
        # zero-padded by size // 2 on both sides; an even window gives one output too many at the far end
        mean = F.avg_pool3d(squares, (self.size, 1, 1), stride=1, padding=(self.size // 2, 0, 0))
        mean = mean.squeeze(1)[:, : x.shape[1]]
        return (wide / mean.mul(self.alpha).add(self.k).pow(self.beta)).to(x.dtype)


class ConvNet(nn.Module):
    """The network of an ArchSpec. Modules are attributes named conv1.., fc6.., fc8 (state_dict keys
    "conv1.weight", ...); pooling, ReLU and dropout are functional, LRN is the shared module `lrn`."""

    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = validate_spec(spec)
        size, alpha, beta, k = spec.lrn
        self.lrn = BandedLRN(int(size), alpha=float(alpha), beta=float(beta), k=float(k))
        # Per-channel 1/input_std, or None (the paper's networks): not in the state dict, so checkpoints keep
        # exactly the weights of the original (a published file's keys map one to one).
        self.input_scale: torch.Tensor | None
        scale = None if spec.input_std is None else 1.0 / torch.tensor(spec.input_std).view(1, -1, 1, 1)
        self.register_buffer("input_scale", scale, persistent=False)
        cin = spec.in_channels
        for c in spec.convs:
            self.add_module(c.name, nn.Conv2d(cin, c.out_channels, c.kernel, c.stride, c.padding))
            cin = c.out_channels
        fin = fc6_in_features(spec)
        for f in spec.fcs:
            self.add_module(f.name, nn.Linear(fin, f.units))
            fin = f.units
        self.add_module(CLASSIFIER, nn.Linear(fin, spec.num_classes))
        # Resolved once so that the training path does no string work per layer.
        self._conv_plan = [(getattr(self, c.name), c.ops[2:], c.pool) for c in spec.convs]
        self._fc_plan = [(getattr(self, f.name), f.dropout) for f in spec.fcs]

    @property
    def layer_names(self) -> list[str]:
        """All layer names in forward order, e.g. ["conv1", ..., "conv5", "fc6", "fc7", "fc8"]."""
        return [c.name for c in self.spec.convs] + [f.name for f in self.spec.fcs] + [CLASSIFIER]

    def conv_layers(self) -> dict[str, nn.Conv2d]:
        """name -> Conv2d, in forward order (the trainer renormalizes these filters after each step)."""
        return {c.name: getattr(self, c.name) for c in self.spec.convs}

    def fc_layers(self) -> dict[str, nn.Linear]:
        """name -> Linear for fc6, fc7 (those present) and the classifier fc8, in forward order."""
        names = [f.name for f in self.spec.fcs] + [CLASSIFIER]
        return {name: getattr(self, name) for name in names}

    def replace_classifier(self, num_classes: int) -> nn.Linear:
        """Swap fc8 for a fresh `num_classes`-way layer (transfer experiments); updates `spec`; returns it."""
        old: nn.Linear = getattr(self, CLASSIFIER)
        new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
        self.spec = validate_spec(dataclasses.replace(self.spec, num_classes=num_classes))
        self.add_module(CLASSIFIER, new)
        return new

    def _check_input(self, x: torch.Tensor) -> None:
        s = self.spec.input_size
        if x.dim() != 4 or x.shape[1] != self.spec.in_channels or x.shape[-2:] != (s, s):
            raise ValueError(f"{self.spec.name} expects input [N, {self.spec.in_channels}, {s}, {s}], "
                             f"got {list(x.shape)}")

    def scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """The mean-subtracted input divided by spec.input_std (published networks); unchanged otherwise."""
        return x if self.input_scale is None else x * self.input_scale

    def _pool(self, x: torch.Tensor, p: PoolSpec) -> torch.Tensor:
        return F.max_pool2d(x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; the training path, with no recording."""
        self._check_input(x)
        x = self.scale_input(x)
        for conv, tail, pool in self._conv_plan:
            x = F.relu(conv(x), inplace=True)  # conv's backward does not need its output
            for op in tail:
                x = self._pool(x, pool) if op == "pool" else self.lrn(x)
        x = torch.flatten(x, 1)
        for fc, p in self._fc_plan:
            x = F.dropout(F.relu(fc(x), inplace=True), p, self.training)
        return getattr(self, CLASSIFIER)(x)

    def forward_record(self, x: torch.Tensor) -> tuple[torch.Tensor, Record]:
        """Logits and a Record of every layer (see Record); differentiable unless run under no_grad."""
        self._check_input(x)
        x = self.scale_input(x)
        rec = Record()
        for c, (conv, tail, pool) in zip(self.spec.convs, self._conv_plan, strict=True):
            rec.conv_input_shape[c.name] = x.shape
            rec.ops[c.name] = c.ops
            x = F.relu(conv(x))
            rec.rectified[c.name] = x
            for op in tail:
                if op == "pool":
                    rec.pool_input_shape[c.name] = x.shape
                    x, rec.switches[c.name] = F.max_pool2d(x, pool.kernel, pool.stride, pool.padding,
                                                           ceil_mode=pool.ceil_mode, return_indices=True)
                else:
                    x = self.lrn(x)
            rec.outputs[c.name] = x
        x = torch.flatten(x, 1)
        for f, (fc, p) in zip(self.spec.fcs, self._fc_plan, strict=True):
            x = F.relu(fc(x))
            rec.outputs[f.name] = x
            x = F.dropout(x, p, self.training)
        logits = getattr(self, CLASSIFIER)(x)
        rec.outputs[CLASSIFIER] = logits
        return logits, rec


def init_weights_(model: nn.Module, scheme: str = "gaussian", std: float = 0.01,
                  generator: torch.Generator | None = None) -> nn.Module:
    """Initialize every Conv2d / Linear in place: "gaussian" = N(0, std) (the paper's "weights initialized
    to 1e-2"), "kaiming" = He normal (fan_in, ReLU; `std` unused); biases 0. Returns the model."""
    if scheme not in ("gaussian", "kaiming"):
        raise ConfigError(f"training.init.scheme: must be 'gaussian' or 'kaiming', got {scheme!r}")
    if scheme == "gaussian" and (not is_number(std) or std <= 0):
        raise ConfigError(f"training.init.std: expected a positive number, got {std!r}")
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            with torch.no_grad():
                if scheme == "gaussian":
                    nn.init.normal_(m.weight, 0.0, float(std), generator=generator)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model
