"""The `zfrepro` command line: what every Snakemake rule calls. One subcommand per step.

Each command lives in the command layer (zfrepro.commands, one module per topic): its module defines
`configure_<name>_parser(parser)` and `<name>_command(args)` (`name` with underscores for dashes). This file only
lists the commands and dispatches, importing just the module of the command being run; the command modules in
turn import the rooms below inside each command (every workflow job is one command, and importing scikit-learn,
matplotlib and the rest each time would cost seconds).

One encoding on the command line: an option whose value is a list, a mapping, a boolean, a value that may be
null, or a config section takes JSON (zfrepro.options).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from zfrepro.errors import ZFError, disk_full

# (command, module under zfrepro, help), in the order of the study
COMMANDS = [
    ("generate", "commands.data", "write a generated dataset in the real dataset's on-disk layout"),
    ("prepare", "commands.data", "validate, decode and index ImageNet; compute the mean image"),
    ("train", "commands.training", "train one architecture with one seed (resumes after an interruption)"),
    ("fetch-weights", "commands.weights",
     "download a published network's weights into a cache, checking its checksum"),
    ("import-weights", "commands.weights",
     "convert published weights (pytorchcv, torchvision) into this project's checkpoint, recording their origin"),
    ("evaluate", "commands.training", "train/val top-1 and top-5 error, centre crop and 10 crops"),
    ("table2", "commands.training", "Table 2: our single models and ensembles beside the paper's"),
    ("table3", "commands.training", "Table 3: architecture changes beside the paper's"),
    ("project", "commands.visualize", "project chosen activations of a trained model to pixel space (deconvnet)"),
    ("mine", "commands.visualize", "one pass over a split: the top-k activations of every feature map of layers 1-5"),
    ("top9-projections", "commands.visualize", "Fig 2 data: mined activations projected, with patches"),
    ("evolution", "commands.visualize", "Fig 4 data: the strongest activation of chosen maps at every epoch"),
    ("convergence", "commands.visualize",
     "Fig 4 numbers: CKA of each layer's features at the kept epochs with the final epoch's, per seed (claim 9)"),
    ("atlas", "commands.visualize",
     "feature atlas: every map of layers 1-5, its top-9 projections, patches, evolution (HTML)"),
    ("atlas-compare", "commands.visualize",
     "two or more feature atlases' layer 1-2 maps side by side (Fig 6 for every map)"),
    ("unpooling", "commands.visualize", "Fig 1 data: one real map, its pooling switches and the unpooled map"),
    ("filters", "commands.visualize", "Fig 6 data: layer-1 filters, their statistics, layer-2 projections"),
    ("invariance", "commands.analyses",
     "Fig 5 data: feature distances and p(true) under translation, scale and rotation"),
    ("occlusion", "commands.analyses",
     "Fig 7 data: occlusion sensitivity of the strongest layer-5 map and the output"),
    ("correspondence", "commands.analyses",
     "Table 1 data: feature changes when the same part is masked in several images"),
    ("table1", "commands.analyses", "Table 1: the correspondence measure beside the paper's"),
    ("overlap", "commands.analyses",
     "Caltech images also in the ImageNet training set (normalized correlation of thumbnails, paper 5)"),
    ("overlap-table", "commands.analyses",
     "Overlap table: duplicates found beside the paper's 44 (Caltech-101) and 243 (Caltech-256)"),
    ("prepare-transfer", "commands.transfer",
     "decode Caltech-101/256 (all.pt) or VOC 2012 (train.pt, val.pt) for the transfer experiments"),
    ("transfer-splits", "commands.transfer", "random nested train/test splits of a prepared Caltech set (JSON)"),
    ("features", "commands.transfer",
     "frozen features of chosen layers of the ImageNet model for a prepared split ({layer}.pt)"),
    ("scratch", "commands.transfer",
     "the non-pretrained baseline for one split and size: train the network from scratch on it, score it"),
    ("classify", "commands.transfer",
     "Tables 4, 5, 7, Fig 9: a linear classifier on frozen features, per split and training size (CSV)"),
    ("voc-ap", "commands.transfer", "Table 6 data: softmax on frozen VOC features, per-class AP on the val split"),
    ("table4", "commands.transfer", "Table 4: Caltech-101 accuracy beside the paper's"),
    ("table5", "commands.transfer", "Table 5: Caltech-256 accuracy beside the paper's"),
    ("table6", "commands.transfer", "Table 6: PASCAL VOC 2012 per-class AP beside the paper's"),
    ("table7", "commands.transfer", "Table 7: accuracy per layer (SVM, softmax) beside the paper's"),
    ("claims", "commands.report", "the scorecard: each of the paper's 11 claims measured, with its noise and verdict"),
    ("plot", "commands.report", "draw a figure (PNG and PDF) from its computed data"),
    ("front-page", "commands.report",
     "the report's front page: the claims' verdicts, every table beside the paper's"),
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the `command` about to run, only its module is imported."""
    parser = argparse.ArgumentParser(prog="zfrepro", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help in COMMANDS:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--threads", type=int, default=1, help="torch threads and data-loading workers")
        if command is None or name == command:
            stem = name.replace("-", "_")
            mod = importlib.import_module(f"zfrepro.{module}")
            getattr(mod, f"configure_{stem}_parser")(p)
            p.set_defaults(func=getattr(mod, f"{stem}_command"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(command).parse_args(argv)
    try:
        args.func(args)
    except ZFError as err:
        print(f"zfrepro {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        if not disk_full(err):
            raise
        # A full disk outside the results' atomic writes (zfrepro.io names the file there): images, logs, caches.
        name = next((e.filename for e in (err, err.__cause__, err.__context__) if getattr(e, "filename", None)), None)
        print(f"zfrepro {args.command}: error: no space left on device{f' writing {name}' if name else ''}: free "
              "space and rerun; nothing finished was lost (every result is written whole or not at all)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
