"""Table 1: the correspondence measure (zfrepro.analysis.correspondence) beside the paper's, and its footnote,
which states claim 8 with the scorecard's rule."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from zfrepro.analysis.correspondence import RANDOM
from zfrepro.analysis.parts_csv import part_label
from zfrepro.report import paper
from zfrepro.report.scorecard.rows import with_defaults
from zfrepro.report.scorecard.statistics import verdict as interval_verdict
from zfrepro.report.scorecard.visualization import claim8_parts, correspondence_gap


def _layer_number(layer: str) -> str:
    digits = "".join(ch for ch in layer if ch.isdigit())
    return digits or layer


def table1(data: dict) -> pd.DataFrame:
    """Table 1: one row per mask (paper rows first), paper mean/sd beside ours for each analysed layer."""
    published = paper.TABLE1.set_index("occlusion")
    rows = []
    for key in [*data["parts"], RANDOM]:
        label = part_label(key)
        row: dict = {"occlusion": label}
        for layer in data["layers"]:
            n = _layer_number(layer)
            have = label in published.index and f"layer{n}_mean" in published.columns
            mean, sd = data["summary"][layer][key]
            row[f"paper_layer{n}_mean"] = published.loc[label, f"layer{n}_mean"] if have else None
            row[f"paper_layer{n}_sd"] = published.loc[label, f"layer{n}_sd"] if have else None
            row[f"ours_layer{n}_mean"] = round(mean, 4)
            row[f"ours_layer{n}_sd"] = round(sd, 4)
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def claim8(data: dict, criteria: Mapping | None = None) -> str:
    """Claim 8 in words, with the scorecard's verdict (scorecard.visualization.correspondence_gap): are the eyes
    and nose below random at layer 5, and how many by more than one random sd?"""
    layer = "conv5"
    if layer not in data["summary"]:
        return f"Claim 8 not checked: {layer} was not analysed."
    s = data["summary"][layer]
    rand_mean, rand_sd = s[RANDOM]
    parts = claim8_parts(data)
    clear = [p for p in parts if s[p][0] < rand_mean - rand_sd]
    words = ", ".join(f"{part_label(p)} {s[p][0]:.3f}" for p in parts)
    # the interval's verdict alone: whether a paper-sized gap was detectable is the scorecard's to say
    gap = correspondence_gap(data, with_defaults(criteria or {}))
    e = gap.estimate
    verdict = interval_verdict(e.low, e.high, gap.threshold, gap.above)
    return (f"Claim 8 (eyes and nose below random at layer {_layer_number(layer)}) {verdict} here: {words} vs "
            f"random {rand_mean:.3f} +- {rand_sd:.3f}; {len(clear)} of {len(parts)} parts lie more than one "
            "random sd below.")


def table1_footnote(data: dict, criteria: Mapping | None = None) -> str:
    st = data["settings"]
    n = len(data["images"])
    skipped = (f" {len(data['skipped'])} earlier images of the class were skipped because the crop cut a part box."
               if data["skipped"] else "")
    return (
        f"Delta: for each image, eps = features(original) - features(part masked with the mean colour in the "
        f"original image, before resizing and cropping); Delta = mean over the {n * (n - 1) // 2} pairs of the {n} "
        "images of the fraction of feature positions whose signs of eps differ (the paper's sum of Hamming "
        "distances, normalised: project decision); lower = more consistent. "
        f"Ours: network {st['arch']} ({st['model']}), images {', '.join(data['images'])} of class {data['group']} "
        f"({data['class_name']}) from {st['parts_csv']}, input {st['crop_size']} px crops of {st['image_size']} px "
        f"images.{skipped} Parts: mean +- sample sd over the image pairs. Random: one box per image of the size "
        f"of one of its parts at a random position inside the crop, {st['random_repeats']} repetitions (seed "
        f"{st['seed']}); mean +- sample sd of Delta over the repetitions. Paper: 5 dog images from ImageNet; its "
        f"+- is the sd over repetitions. {claim8(data, criteria)}"
    )


