"""The config schema (workflow/schemas/config.schema.yaml) is the one source of defaults: every default the Python
code gives a config setting equals the schema's, and the schema's base networks are the registry's.

Changing a default on one side only fails here. Where the workflow always passes a value, the Python fallback was
removed instead (the data section of data_params, the batch size of extract_features); that is checked too.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
import torch
import yaml
from test_config_defaults import ROOT, _resolve

from zfrepro.analysis import correspondence, deconvnet, filters, invariance, mining, occlusion, overlap, projections
from zfrepro.cli import build_parser
from zfrepro.data import synthetic
from zfrepro.data.prepare import DATA_KEYS, data_params
from zfrepro.errors import ConfigError
from zfrepro.model import architectures, evaluate, network
from zfrepro.model.train import make_scheduler
from zfrepro.model.train_config import LR_SCHEDULE_DEFAULTS, TrainConfig
from zfrepro.report import overlap_table, tables, transfer_tables
from zfrepro.report.scorecard import rows
from zfrepro.transfer import features, prepare
from zfrepro.transfer.classifiers import CLASSIFIER_PARAMS

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def _node(key: str) -> dict:
    """The schema of a dotted config key, its $ref resolved."""
    node = SCHEMA
    for part in key.split("."):
        node = _resolve(node, SCHEMA)["properties"][part]
    return _resolve(node, SCHEMA)


def schema_default(key: str) -> Any:
    """The schema's default of a dotted key; an object's default {} filled with its properties' defaults, as the
    workflow's validation fills it."""
    node = _node(key)
    value = node["default"]
    if value == {} and "properties" in node:
        value = {name: schema_default(f"{key}.{name}") for name, child in node["properties"].items()
                 if "default" in _resolve(child, SCHEMA)}
    return value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_train_config_defaults_are_the_schemas():
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    assert sorted(fields) == sorted(_node("training")["properties"])
    assert dataclasses.asdict(TrainConfig()) == {name: schema_default(f"training.{name}") for name in fields}


def test_lr_schedule_fallbacks_are_the_schemas():
    """A partial lr_schedule (transfer.scratch.training is not filled in by the schema) falls back to these."""
    expected = schema_default("training.lr_schedule")
    assert LR_SCHEDULE_DEFAULTS == expected
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = make_scheduler(opt, {})
    assert expected["kind"] == "step" and isinstance(sched, torch.optim.lr_scheduler.MultiStepLR)
    assert (sched.gamma, sorted(sched.milestones)) == (expected["factor"], expected["milestones"])
    plateau = make_scheduler(opt, {"kind": "plateau"})  # the other keys fall back too
    assert (plateau.factor, plateau.patience, plateau.min_lrs) == (expected["factor"], expected["patience"],
                                                                   [expected["min_lr"]])


def test_classifier_defaults_are_the_schemas():
    assert CLASSIFIER_PARAMS == {kind: schema_default(f"transfer.{kind}") for kind in ("softmax", "svm")}


# (function, keyword, config key): the keyword's default stands for that setting of the config
KEYWORD_DEFAULTS = [
    (evaluate.evaluate, "train_subset", "evaluation.train_subset"),
    (evaluate.evaluate, "batch_size", "evaluation.batch_size"),
    (tables.table2, "crops", "evaluation.table_crops"),
    (tables.table3, "crops", "evaluation.table_crops"),
    (architectures.zf_spec, "dropout", "training.dropout"),
    (architectures.krizhevsky_spec, "dropout", "training.dropout"),
    (architectures.spec_from_config, "dropout", "training.dropout"),
    (network.init_weights_, "scheme", "training.init.scheme"),
    (mining.mine_top9, "k", "visualize.top_k"),
    (mining.mine_top9, "batch_size", "visualize.batch_size"),
    (deconvnet.project, "norm", "visualize.norm"),
    (deconvnet.project_maps, "norm", "visualize.norm"),
    (projections.project_entries, "norm", "visualize.norm"),
    (projections.top9_figure_data, "norm", "visualize.norm"),
    (projections.evolution_data, "norm", "visualize.norm"),
    (projections.layer2_projections, "norm", "visualize.norm"),
    (occlusion.occlusion_data, "norm", "visualize.norm"),
    (occlusion.occlusion_data, "layer", "occlusion.layer"),
    (occlusion.occlusion_data, "top_projections", "occlusion.top_projections"),
    (occlusion.occlusion_data, "batch_size", "occlusion.batch_size"),
    (occlusion.occlude, "layer", "occlusion.layer"),
    (occlusion.occlude, "batch_size", "occlusion.batch_size"),
    (occlusion.occlusion_maps, "batch_size", "occlusion.batch_size"),
    (occlusion.model_forward, "layer", "occlusion.layer"),
    (correspondence.correspondence, "images", "correspondence.images"),
    (correspondence.correspondence, "wnid", "correspondence.wnid"),
    (correspondence.correspondence, "random_repeats", "correspondence.random_repeats"),
    (correspondence.correspondence, "layers", "correspondence.layers"),
    (correspondence.correspondence, "seed", "correspondence.seed"),
    (invariance.invariance_data, "layers", "invariance.layers"),
    (overlap.find_duplicates, "size", "transfer.overlap.size"),
    (overlap.find_duplicates, "threshold", "transfer.overlap.threshold"),
    (overlap_table.overlap_table, "threshold", "transfer.overlap.threshold"),
    (prepare.prepare_transfer, "background", "transfer.caltech101.background"),
    (prepare.prepare_transfer, "background", "transfer.caltech256.background"),
    (transfer_tables.table6, "layer", "transfer.voc.layer"),
    (filters.filter_stats, "mid_band", "visualize.fig6_mid_band"),
    (filters.band_shares, "band", "visualize.fig6_mid_band"),
]


@pytest.mark.parametrize(("function", "keyword", "key"), KEYWORD_DEFAULTS,
                         ids=[f"{f.__module__}.{f.__name__}:{kw}={key}" for f, kw, key in KEYWORD_DEFAULTS])
def test_keyword_defaults_are_the_schemas(function, keyword, key):
    assert _plain(inspect.signature(function).parameters[keyword].default) == schema_default(key)


def test_values_the_workflow_always_passes_have_no_python_default():
    full = {key: schema_default(f"data.{key}") for key in DATA_KEYS}
    assert {key: data_params(full)[key] for key in DATA_KEYS} == full
    for key in DATA_KEYS:
        with pytest.raises(ConfigError, match=rf"data\.{key}: missing"):
            data_params({k: v for k, v in full.items() if k != key})
    batch_size = inspect.signature(features.extract_features).parameters["batch_size"]
    assert batch_size.default is inspect.Parameter.empty  # the workflow passes evaluation.batch_size


def test_base_networks_are_the_schemas_enum():
    """A new base network is a builder in architectures.BASE_NETWORKS plus its name in the schema's enum of `base`."""
    arch = _resolve(_node("architectures")["additionalProperties"], SCHEMA)
    assert sorted(arch["properties"]["base"]["enum"]) == sorted(architectures.BASE_NETWORKS)
    for name, build in architectures.BASE_NETWORKS.items():
        assert build(10, 224).name == name


def test_synthetic_generators_are_the_schemas_enum():
    """A generator is an entry of synthetic.GENERATORS plus its name in the enum of synthetic.generator; a params
    dict without the key (or null) means the schema's default."""
    node = _node("synthetic.generator")
    assert node["enum"] == list(synthetic.GENERATORS)
    assert synthetic.DEFAULT_GENERATOR == node["default"] == schema_default("synthetic")["generator"]
    params = {"image_size": 16, "train_images": 1, "val_images": 1, "max_objects": 1}
    assert synthetic.check_params("voc", params)["generator"] == node["default"]


# (command, option, config key): the option's default stands for that setting of the config
OPTION_DEFAULTS = [
    ("train", "--device", "device"), ("evaluate", "--device", "device"), ("features", "--device", "device"),
    ("scratch", "--device", "device"), ("occlusion", "--device", "device"), ("invariance", "--device", "device"),
    ("mine", "--device", "device"), ("evolution", "--device", "device"),
    ("table2", "--crops", "evaluation.table_crops"), ("table3", "--crops", "evaluation.table_crops"),
    ("features", "--batch-size", "evaluation.batch_size"),
    ("mine", "--k", "visualize.top_k"), ("mine", "--batch-size", "visualize.batch_size"),
    ("project", "--norm", "visualize.norm"), ("top9-projections", "--norm", "visualize.norm"),
    ("evolution", "--norm", "visualize.norm"), ("filters", "--norm", "visualize.norm"),
    ("occlusion", "--norm", "visualize.norm"), ("top9-projections", "--seed", "visualize.sample_seed"),
    ("evolution", "--seed", "visualize.sample_seed"), ("filters", "--seed", "visualize.sample_seed"),
    ("evolution", "--display-size", "visualize.fig4_display_size"),
    ("unpooling", "--layer", "visualize.fig1_layer"), ("unpooling", "--image", "visualize.fig1_image"),
    ("unpooling", "--window", "visualize.fig1_window"), ("invariance", "--layers", "invariance.layers"),
    ("occlusion", "--layer", "occlusion.layer"), ("occlusion", "--top-projections", "occlusion.top_projections"),
    ("occlusion", "--batch-size", "occlusion.batch_size"), ("correspondence", "--images", "correspondence.images"),
    ("correspondence", "--random-repeats", "correspondence.random_repeats"),
    ("correspondence", "--layers", "correspondence.layers"), ("correspondence", "--seed", "correspondence.seed"),
    ("correspondence", "--wnid", "correspondence.wnid"),
    ("overlap", "--size", "transfer.overlap.size"), ("overlap", "--threshold", "transfer.overlap.threshold"),
    ("overlap-table", "--threshold", "transfer.overlap.threshold"),
    ("overlap-table", "--drop", "transfer.overlap.drop_from_pretraining"),
    ("prepare-transfer", "--background", "transfer.caltech101.background"), ("table6", "--layer", "transfer.voc.layer"),
    ("filters", "--mid-band", "visualize.fig6_mid_band"), ("convergence", "--images", "visualize.fig4_cka_images"),
    ("convergence", "--seed", "visualize.sample_seed"), ("convergence", "--device", "device"),
]


@pytest.mark.parametrize(("command", "option", "key"), OPTION_DEFAULTS,
                         ids=[f"{c} {o}={k}" for c, o, k in OPTION_DEFAULTS])
def test_command_line_defaults_are_the_schemas(command, option, key):
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert subcommands[command]._option_string_actions[option].default == schema_default(key)


def test_claims_criteria_are_the_schemas():
    """The scorecard's fallback criteria (a key the command line leaves out) are the config's `claims` defaults."""
    assert rows.CRITERIA == schema_default("claims")
