"""Where each table and figure goes in the report: the paper's section it reproduces (the report's category), the
paper's item (Fig 2, Table 3, ...) and a one-line description. The workflow's report() calls and the front page
(zfrepro.report.front_page) both read it, so the report's categories and the front page's sections agree.
"""

from __future__ import annotations

from dataclasses import dataclass

# The report's categories, in the paper's order (Snakemake sorts categories by name, hence the numbers).
CLAIMS = "1 Claims: what reproduced"
TRAINING = "2 Model and training (section 3)"
VISUALIZATION = "3 Visualization (sections 2, 4)"
ARCHITECTURE = "4 Architecture selection (section 4.1)"
OCCLUSION = "5 Occlusion and correspondence (sections 4.2, 4.3)"
IMAGENET = "6 ImageNet 2012 (section 5.1)"
TRANSFER = "7 Feature generalization (sections 5.2, 5.3)"
CATEGORIES = (CLAIMS, TRAINING, VISUALIZATION, ARCHITECTURE, OCCLUSION, IMAGENET, TRANSFER)


@dataclass(frozen=True)
class Item:
    category: str
    paper: str  # the paper's item this reproduces ("Fig 2"), or what it adds ("added")
    title: str


ITEMS = {
    "claims": Item(CLAIMS, "the paper's claims",
        "the scorecard: each of the paper's 11 claims measured, with its noise and verdict"),
    "training_curves": Item(TRAINING, "added",
        "training curves: loss and top-1 error per epoch of every network, learning-rate drops marked"),
    "fig3_architecture": Item(TRAINING, "Fig 3", "the architecture of the trained network, layer by layer"),
    "fig1_deconvnet": Item(VISUALIZATION, "Fig 1",
        "the deconvnet: a real feature map, its pooling switches and the unpooled map"),
    "fig2_top9": Item(VISUALIZATION, "Fig 2",
        "top-9 activations of feature maps of layers 1-5, projected, beside their image patches"),
    "atlas": Item(VISUALIZATION, "Fig 2 for every map",
        "the feature atlas: every map of layers 1-5 with its top-9 patches and projections"),
    "fig4_evolution": Item(VISUALIZATION, "Fig 4",
        "feature evolution: the strongest activation of chosen maps at the kept epochs"),
    "fig4_convergence": Item(VISUALIZATION, "Fig 4 (claim 9)",
        "how fast each layer converges: CKA with the final epoch's features"),
    "fig5_invariance": Item(VISUALIZATION, "Fig 5",
        "invariance to translation, scale and rotation at layers 1 and 7 and the output"),
    "fig6_filters": Item(ARCHITECTURE, "Fig 6",
        "layer-1 filters with and without renormalisation, ZF beside Krizhevsky; layer-2 projections"),
    "fig6_filter_stats": Item(ARCHITECTURE, "Fig 6 (claims 1, 2)",
        "layer-1 filter statistics, spectra and layer-2 aliasing"),
    "fig7_occlusion": Item(OCCLUSION, "Fig 7",
        "occlusion sensitivity of the strongest layer-5 map and of the classifier"),
    "fig8_correspondence": Item(OCCLUSION, "Fig 8",
        "the images of the correspondence experiment, with the masked parts"),
    "table1_correspondence": Item(OCCLUSION, "Table 1",
        "correspondence: feature change consistency when the same part is masked"),
    "table2_imagenet": Item(IMAGENET, "Table 2", "ImageNet 2012 validation error of single networks and ensembles"),
    "table3_architectures": Item(IMAGENET, "Table 3", "architecture changes and layer removals"),
    "table4_caltech101": Item(TRANSFER, "Table 4",
        "Caltech-101 accuracy: pretrained features vs training from scratch"),
    "table5_caltech256": Item(TRANSFER, "Table 5",
        "Caltech-256 accuracy: pretrained features vs training from scratch"),
    "fig9_caltech256": Item(TRANSFER, "Fig 9", "Caltech-256 accuracy against training images per class"),
    "table6_voc2012": Item(TRANSFER, "Table 6", "PASCAL VOC 2012 per-class average precision"),
    "table7_layers": Item(TRANSFER, "Table 7", "accuracy of a linear SVM and a softmax on each layer's features"),
    "overlap": Item(TRANSFER, "section 5.2",
        "Caltech images found in the ImageNet training set (removed from pretraining)"),
}


def item(name: str) -> Item:
    """The report place of a table or figure (its file name without the extension)."""
    try:
        return ITEMS[name]
    except KeyError:
        raise KeyError(f"{name!r} has no report section: add it to zfrepro.report.sections.ITEMS") from None


def report_place(name: str, kind: str) -> dict:
    """Snakemake report() keyword arguments for the file `name` (`kind`: figure, table, table (Markdown), page): its
    category, and labels that make each category a table of its files (paper item, content, file kind)."""
    found = item(name)
    return {"category": found.category, "labels": {"paper": found.paper, "content": found.title, "file": kind}}
