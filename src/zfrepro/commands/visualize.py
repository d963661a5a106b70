"""Commands of the visualisation analyses: deconvnet projections, mining, Figs 1, 2, 4 and 6, the feature atlas.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from zfrepro.errors import ConfigError, DataError
from zfrepro.options import json_arg, json_list_of, resolve_device

if TYPE_CHECKING:
    from zfrepro.analysis.deconvnet import Target


def configure_project_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--targets", required=True, type=json_list_of(str),
                   help='JSON list of "IMAGE:LAYER:CHANNEL:Y:X": the split\'s image index and a position of the '
                        "layer's output map")
    p.add_argument("--norm", default="identity", choices=["identity", "gradient"])
    p.add_argument("--out", required=True, help="a .pt file with the projections [K, 3, H, W]")
    p.add_argument("--png", help="also draw them as a grid (PNG and PDF)")


def _target(text: str) -> Target:
    from zfrepro.analysis.deconvnet import Target

    try:
        image, layer, channel, y, x = text.split(":")
        return Target(int(image), layer, int(channel), int(y), int(x))
    except ValueError as err:
        raise ConfigError(f"--targets: expected IMAGE:LAYER:CHANNEL:Y:X (e.g. 12:conv3:40:5:7), got {text!r}") from err


def project_command(args: argparse.Namespace) -> None:
    import sys

    from zfrepro.analysis.deconvnet import Target, project
    from zfrepro.data.preprocess import center_crop
    from zfrepro.io import atomic_torch_save
    from zfrepro.model.checkpoint import open_inputs

    torch.set_num_threads(max(1, args.threads))
    model, ckpt, split, mean = open_inputs(args.model, args.data_dir, args.split)
    targets = [_target(t) for t in args.targets]
    images = sorted({t.image for t in targets})
    local = {image: i for i, image in enumerate(images)}  # the split's image index -> its row in the batch
    x = center_crop(next(split.batches(images, len(images)))[0], mean, ckpt["crop_size"])
    targets = [Target(local[t.image], t.layer, t.channel, t.y, t.x) for t in targets]
    projections = project(model, x, targets, norm=args.norm)
    silent = [text for text, p in zip(args.targets, projections, strict=True) if not p.any()]
    if silent:  # a zero activation projects to nothing: say so rather than leave a blank image unexplained
        print(f"note: these activations are zero, their projections are blank: {' '.join(silent)}", file=sys.stderr)
    atomic_torch_save(args.out, {"projections": projections, "targets": args.targets, "images": images,
                                 "split": args.split, "norm": args.norm})
    if args.png:
        from zfrepro.report.figures.filters import fig6_filters

        fig6_filters({}, {"projections": projections}, args.png, titles={"projections": "deconvnet projections"})


def _projection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", required=True)
    p.add_argument("--maps", type=int, required=True, help="feature maps per layer")
    p.add_argument("--seed", type=int, default=0, help="seed of the random choice of maps")
    p.add_argument("--norm", default="identity", choices=["identity", "gradient"])
    p.add_argument("--out", required=True)


def configure_top9_projections_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--top9", required=True)
    _projection_options(p)


def top9_projections_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.projections import top9_figure_data
    from zfrepro.io import atomic_torch_save, load_result

    torch.set_num_threads(max(1, args.threads))
    data = top9_figure_data(args.model, args.data_dir, load_result(args.top9), args.maps, args.seed, args.norm)
    atomic_torch_save(args.out, data)


def configure_evolution_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", required=True, type=json_arg(dict), help="JSON: {epoch: epochE.pt}")
    p.add_argument("--train-images", type=json_arg(int, type(None)), default=None,
                   help="JSON: training images searched (an integer, or null for all)")
    p.add_argument("--display-size", type=int, default=48)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the search runs")
    _projection_options(p)


def evolution_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.projections import evolution_data
    from zfrepro.io import atomic_torch_save

    torch.set_num_threads(max(1, args.threads))
    checkpoints = {int(epoch): path for epoch, path in args.checkpoints.items()}
    data = evolution_data(checkpoints, args.data_dir, args.maps, args.train_images, args.seed, args.display_size,
                          args.norm, device=resolve_device(args.device), workers=max(1, args.threads))
    atomic_torch_save(args.out, data)


def configure_unpooling_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--layer", default="conv1")
    p.add_argument("--image", type=int, default=0)
    p.add_argument("--window", type=int, default=6)
    p.add_argument("--out", required=True)


def unpooling_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.projections import unpooling_data
    from zfrepro.io import atomic_torch_save

    atomic_torch_save(args.out, unpooling_data(args.model, args.data_dir, args.layer, args.image, args.window))


def configure_convergence_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoints", required=True, type=json_arg(dict),
                   help="JSON: {seed: {epoch: checkpoint}}, the last epoch of each being the final model")
    p.add_argument("--data-dir", required=True, help="prepared data folder (val.pt, mean.pt)")
    p.add_argument("--images", type=json_arg(int, type(None)), default=256,
                   help="JSON: validation images compared (an integer, or null for all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random choice of images")
    p.add_argument("--arch", required=True, help="the network's name, for the footnote")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", required=True)
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)


def convergence_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.convergence import convergence_data, convergence_table, footnote
    from zfrepro.io import atomic_torch_save
    from zfrepro.report.write import write_table

    torch.set_num_threads(max(1, args.threads))
    checkpoints = {int(s): {int(e): path for e, path in kept.items()} for s, kept in args.checkpoints.items()}
    data = convergence_data(checkpoints, args.data_dir, args.images, args.seed, resolve_device(args.device))
    data["arch"] = args.arch
    atomic_torch_save(args.out, data)
    table = convergence_table(data)
    write_table(table, args.out_csv, args.out_md, "Fig 4: how far each layer is from its final features (claim 9)",
                footnote(data, args.arch))
    print(table.to_string(index=False))


def configure_filters_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.filters import MID_BAND

    p.add_argument("--filters", required=True, type=json_arg(dict),
                   help="JSON: {panel: final.pt} whose layer-1 filters to show")
    p.add_argument("--projections", required=True, type=json_arg(dict),
                   help="JSON: {panel: final.pt} whose layer-2 maps to project")
    p.add_argument("--top9", required=True, type=json_arg(dict), help="JSON: {panel: top9.pt}, the mined activations")
    p.add_argument("--checkpoints", type=json_arg(dict), default={},
                   help="JSON: {panel: {epoch: epochE.pt}}, the kept epochs of a filters panel's network (claim 1)")
    p.add_argument("--mid-band", type=json_arg(list), default=list(MID_BAND),
                   help="JSON [low, high]: the middle spatial frequencies, cycles per pixel")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    _projection_options(p)


def filters_command(args: argparse.Namespace) -> None:
    import torch

    from zfrepro.analysis.filters import FOOTNOTE, alias_share, filter_stats, filter_stats_table, peak_dominance
    from zfrepro.analysis.projections import layer2_projections
    from zfrepro.io import atomic_torch_save, load_result
    from zfrepro.model.checkpoint import load_model
    from zfrepro.report.write import write_table

    torch.set_num_threads(max(1, args.threads))
    band = tuple(float(v) for v in args.mid_band)
    weights, arches, strides, radii, history, stats = {}, {}, {}, {}, {}, {}
    for panel, path in args.filters.items():  # Fig 6 (a), (b), (c): layer-1 filters
        model, ckpt = load_model(path)
        weights[panel] = model.conv_layers()["conv1"].weight.detach().clone()
        arches[panel], strides[panel] = str(ckpt["arch"]), int(model.spec.convs[0].stride)
        radius = ckpt.get("training", {}).get("filter_radius")  # the radius this network was trained with
        radii[panel] = radius
        stats[panel] = filter_stats(weights[panel], f"({panel}) {ckpt['arch']}", radius=radius,
                                    stride=strides[panel], mid_band=band)
        stats[panel]["l2_alias_share"] = math.nan  # filled in below for a network whose layer 2 is projected
        history[panel] = {int(epoch): load_model(kept)[0].conv_layers()["conv1"].weight.detach().clone()
                          for epoch, kept in args.checkpoints.get(panel, {}).items()}
        # imported weights (epoch None) have no training history: their final filters stand alone, as epoch 0
        history[panel][int(ckpt["epoch"] or 0)] = weights[panel]
        stats[panel]["max_median_peak"], stats[panel]["peak_epoch"] = peak_dominance(history[panel])
    projections = {panel: layer2_projections(path, args.data_dir, load_result(args.top9[panel]), args.maps,
                                             args.seed, args.norm)
                   for panel, path in args.projections.items()}  # Fig 6 (d), (e)
    for panel, path in args.projections.items():  # each network's layer-2 aliasing, also in its filters row
        model, ckpt = load_model(path)
        arches[panel], strides[panel] = str(ckpt["arch"]), int(model.spec.convs[0].stride)
        share = float(alias_share(projections[panel], strides[panel], remove_mean=True).mean())
        for row, filters_path in args.filters.items():
            if filters_path == path:
                stats[row]["l2_alias_share"] = share
    atomic_torch_save(args.out, {"filters": weights, "projections": projections, "history": history,
                                 "arches": arches, "strides": strides, "radii": radii, "mid_band": list(band)})
    write_table(filter_stats_table(stats.values()), args.out_csv, args.out_md, "Fig 6: layer-1 filter statistics",
                FOOTNOTE.format(band=list(band)))


def configure_atlas_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.atlas import DEFAULT_EVOLUTION_MAPS
    from zfrepro.options import json_arg

    p.add_argument("--model", required=True, help="the trained network (final.pt)")
    p.add_argument("--top9", required=True, help="its mining result (`zfrepro mine`), e.g. results/analysis/top9/"
                                                 "zf/seed0.pt")
    p.add_argument("--data-dir", required=True, help="the prepared dataset (val.pt, train.pt, mean.pt)")
    p.add_argument("--checkpoints", type=json_arg(dict), default=None,
                   help="JSON {epoch: epochE.pt}: show the evolution of the --evolution-maps at these epochs")
    p.add_argument("--evolution-maps", type=json_arg(dict), default=dict(DEFAULT_EVOLUTION_MAPS),
                   help='JSON {layer: "all" | N | [maps]}: maps whose evolution is shown (N: random maps that '
                        f"fire); default {DEFAULT_EVOLUTION_MAPS}")
    p.add_argument("--evolution-split", default="train", choices=["train", "val"],
                   help="split searched at each epoch (Fig 4: training examples)")
    p.add_argument("--evolution-images", type=json_arg(int, type(None)), default=2000,
                   help="JSON: images of that split searched at each epoch (an integer, or null for all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random choices (evolution maps and images)")
    p.add_argument("--norm", default="identity", choices=["identity", "gradient"])
    p.add_argument("--percentile", type=float, default=0.0,
                   help="contrast stretch of each projection (Fig 2's normalize_for_display)")
    p.add_argument("--chunk", type=int, default=64, help="entries per deconvnet call (memory ~ chunk x input)")
    p.add_argument("--title", default=None, help="name shown on the pages (default: the model's architecture)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the evolution's mining passes run (projections run on the CPU)")
    p.add_argument("--maps-per-layer", type=int, default=None,
                   help="only the first N maps of each layer (volume, e.g. a paper-shape test); default every map")
    p.add_argument("--out-dir", required=True, help="the atlas directory (index.html at its top)")


def atlas_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.atlas import (
        Cost,
        check_top9,
        evolution_maps,
        first_maps,
        iter_evolution,
        iter_layer_projections,
        verify_top9,
    )
    from zfrepro.analysis.mining import mining_indices
    from zfrepro.data.splits import PreparedSplit
    from zfrepro.io import load_result
    from zfrepro.model.checkpoint import open_inputs
    from zfrepro.options import resolve_device
    from zfrepro.report.atlas import AtlasWriter

    start = time.perf_counter()
    torch.set_num_threads(max(1, args.threads))
    top9 = load_result(args.top9)
    split_name = str(top9.get("split", "val"))
    model, ckpt, split, mean = open_inputs(args.model, args.data_dir, split_name)
    layers = check_top9(top9, model, args.top9)
    verify_top9(model, split, mean, top9, layers, path=args.top9)
    if int(top9.get("crop", ckpt["crop_size"])) != int(ckpt["crop_size"]):
        raise DataError(f"{args.top9} was mined at crop {top9['crop']} but {args.model} takes {ckpt['crop_size']}; "
                        "rerun `zfrepro mine` for this model")
    if args.maps_per_layer is not None:
        top9, args.title = first_maps(top9, layers, args.maps_per_layer, args.title or model.spec.name)
    cost = Cost()
    writer = AtlasWriter(args.out_dir, model, ckpt, split, args.data_dir, top9, layers, title=args.title,
                         percentile=args.percentile, model_path=args.model, top9_path=args.top9)
    try:
        for layer in layers:
            writer.begin_layer(layer)
            for chunk in iter_layer_projections(model, split, mean, top9[layer], layer, chunk=args.chunk,
                                                norm=args.norm, cost=cost):
                t0 = time.perf_counter()
                writer.add_chunk(layer, chunk)
                cost.add("writing", time.perf_counter() - t0)
            t0 = time.perf_counter()
            writer.end_layer(layer)
            cost.add("writing", time.perf_counter() - t0)
            _log(f"{layer}: {top9[layer]['value'].shape[0]} maps, {cost.projections.get('atlas', 0)} projections "
                 "so far, "
                 f"{cost.rate('atlas') or 0:.1f} projections/s")
        if args.checkpoints:
            checkpoints = {int(epoch): path for epoch, path in args.checkpoints.items()}
            checkpoints.setdefault(int(ckpt.get("epoch", max(checkpoints) + 1)), args.model)  # the final weights
            channels = {c.name: c.out_channels for c in model.spec.convs if c.name in layers}
            maps = evolution_maps(args.evolution_maps, top9, channels, args.seed)
            evo_split = split if args.evolution_split == split_name else \
                PreparedSplit(Path(args.data_dir) / f"{args.evolution_split}.pt")
            indices = mining_indices(len(evo_split), args.evolution_images, args.seed)
            writer.begin_evolution(sorted(checkpoints), maps, args.evolution_split, len(indices))
            for epoch, layer, sel, chunks in iter_evolution(checkpoints, evo_split, mean, maps, k=int(top9.get("k", 9)),
                                                            indices=indices, chunk=args.chunk, norm=args.norm,
                                                            device=resolve_device(args.device),
                                                            workers=max(1, args.threads), cost=cost):
                writer.add_evolution(epoch, layer, sel, chunks, evo_split)  # its writing counts as evolution
                _log(f"evolution: epoch {epoch} {layer} done ({len(maps[layer])} maps)")
            t0 = time.perf_counter()
            writer.end_evolution()
            cost.add("writing", time.perf_counter() - t0)
        summary = writer.finish(cost, time.perf_counter() - start, threads=args.threads)
    except BaseException:
        writer.abort()
        raise
    _log(summary)


def _log(text: str) -> None:
    print(f"atlas: {text}", file=sys.stderr, flush=True)


def configure_atlas_compare_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.options import json_list_of

    p.add_argument("--atlases", required=True, type=json_list_of(str),
                   help="JSON list of atlas directories (`zfrepro atlas` outputs), shown left to right")
    p.add_argument("--layers", type=json_list_of(str), default=["conv1", "conv2"], help="JSON list of layers")
    p.add_argument("--order", default="top", choices=["top", "map"], help="card order: strongest first or by map")
    p.add_argument("--out-dir", required=True)


def atlas_compare_command(args: argparse.Namespace) -> None:
    from zfrepro.report.atlas_compare import write_comparison

    write_comparison(args.atlases, args.out_dir, args.layers, args.order)


# Defined beside the code they run (whose modules are being reworked on other branches); reached
# through this layer like every command, and imported only when run.
def configure_mine_parser(p: argparse.ArgumentParser) -> None:
    from zfrepro.analysis.mining import configure_mine_parser as configure

    configure(p)


def mine_command(args: argparse.Namespace) -> None:
    from zfrepro.analysis.mining import mine_command as command

    command(args)
