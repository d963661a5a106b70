"""zfrepro.report.paper: the stored published numbers, checked against the paper's text and against each other
where the paper prints the same result twice."""

from __future__ import annotations

import pytest

from zfrepro.data.datasets import VOC_CLASSES
from zfrepro.model.architectures import zf_spec
from zfrepro.model.spec import output_shapes, rectified_shapes
from zfrepro.report import paper


def test_paper_tables_hold_the_published_values():
    t2 = paper.TABLE2.set_index("model")
    assert t2.loc["1 convnet as per Fig 3", "val_top1"] == 38.4
    assert t2.loc["6 convnets, (a) and (b) combined", "test_top5"] == 14.8
    assert len(paper.TABLE3) == 12 and paper.TABLE3["val_top5"].iloc[-1] == 16.9
    assert paper.TABLE6["zf2014"].mean() == pytest.approx(paper.TABLE6_MEAN["zf2014"], abs=0.05)
    assert paper.TABLE1.set_index("occlusion").loc["random", "layer5_mean"] == 0.107


def test_results_printed_in_two_tables_agree():
    t2 = paper.TABLE2.set_index("model")[["val_top1", "val_top5"]]
    t3 = paper.TABLE3.set_index("model")[["val_top1", "val_top5"]]
    same = {"our replication of Krizhevsky, 1 convnet": "our replication of Krizhevsky",
            "1 convnet as per Fig 3": "our model (Fig 3)",
            "(b) 1 convnet, layers 3,4,5 = 512,1024,512 maps": "Fig 3: adjust layers 3,4,5: 512,1024,512 maps"}
    for row2, row3 in same.items():
        assert t2.loc[row2].tolist() == t3.loc[row3].tolist(), row2
    # Fig 9's reference line is Table 5's best Caltech-256 result at 60 images per class.
    assert paper.TABLE5.set_index("method").loc["Bo et al. 2013", "acc60_mean"] == paper.BO_2013_CALTECH256_60


# The stored diningtable cells of [A] and [B] repeat the cow row above them (63.2, 77.8): their means come out
# 74.03 and 82.33 instead of the printed 74.3 and 82.2 (a defect of src/zfrepro/report/paper.py, reported).
COPIED_ROW = pytest.mark.xfail(strict=True, reason="paper.TABLE6 diningtable cells of [A] and [B] copy the cow row")


def test_table6_lists_the_voc_classes_in_the_devkit_order():
    assert list(paper.TABLE6["class"]) == list(VOC_CLASSES)


@pytest.mark.parametrize("column", [pytest.param("sande2012", marks=COPIED_ROW),
                                    pytest.param("yan2012", marks=COPIED_ROW), "zf2014"])
def test_every_table6_mean_is_the_mean_of_its_classes(column):
    # The paper prints means rounded to one decimal.
    assert paper.TABLE6[column].mean() == pytest.approx(paper.TABLE6_MEAN[column], abs=0.05)


def test_fig3_sizes_are_the_sizes_of_our_zf_at_224():
    spec = zf_spec(1000, 224)
    rect, outs = rectified_shapes(spec), output_shapes(spec)
    ours = []
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        ours.append(rect[name][1])
        if name in ("conv1", "conv2", "conv5"):
            ours.append(outs[name][1])  # the pooled map
    assert tuple(ours) == paper.FIG3_SIZES
