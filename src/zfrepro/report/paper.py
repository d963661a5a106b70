"""The published numbers of Zeiler & Fergus 2014 (arXiv 1311.2901 v3 / ECCV), stored once, as data.

Values are copied from the paper's tables; `None` marks a cell the paper leaves empty. Never mix in arXiv v1.
"""

from __future__ import annotations

import pandas as pd

# Table 1: correspondence measure Delta, (mean, sd) per occluded part and layer.
TABLE1 = pd.DataFrame(
    [
        ("right eye", 0.067, 0.007, 0.069, 0.015),
        ("left eye", 0.069, 0.007, 0.068, 0.013),
        ("nose", 0.079, 0.017, 0.069, 0.011),
        ("random", 0.107, 0.017, 0.073, 0.014),
    ],
    columns=["occlusion", "layer5_mean", "layer5_sd", "layer7_mean", "layer7_sd"],
)

# Table 2: ImageNet 2012 classification error % (val top-1, val top-5, test top-5).
TABLE2 = pd.DataFrame(
    [
        ("Gunji et al. 2012", None, None, 26.2),
        ("Krizhevsky, 1 convnet", 40.7, 18.2, None),
        ("Krizhevsky, 5 convnets", 38.1, 16.4, 16.4),
        ("Krizhevsky*, 1 convnet", 39.0, 16.6, None),
        ("Krizhevsky*, 7 convnets", 36.7, 15.4, 15.3),
        ("our replication of Krizhevsky, 1 convnet", 40.5, 18.1, None),
        ("1 convnet as per Fig 3", 38.4, 16.5, None),
        ("(a) 5 convnets as per Fig 3", 36.7, 15.3, 15.3),
        ("(b) 1 convnet, layers 3,4,5 = 512,1024,512 maps", 37.5, 16.0, 16.1),
        ("6 convnets, (a) and (b) combined", 36.0, 14.7, 14.8),
    ],
    columns=["model", "val_top1", "val_top5", "test_top5"],
)

# Table 3: architecture changes, error % (train top-1, val top-1, val top-5).
TABLE3 = pd.DataFrame(
    [
        ("our replication of Krizhevsky", 35.1, 40.5, 18.1),
        ("Krizhevsky: removed layers 3,4", 41.8, 45.4, 22.1),
        ("Krizhevsky: removed layer 7", 27.4, 40.0, 18.4),
        ("Krizhevsky: removed layers 6,7", 27.4, 44.8, 22.4),
        ("Krizhevsky: removed layers 3,4,6,7", 71.1, 71.3, 50.1),
        ("Krizhevsky: adjust layers 6,7: 2048 units", 40.3, 41.7, 18.8),
        ("Krizhevsky: adjust layers 6,7: 8192 units", 26.8, 40.0, 18.1),
        ("our model (Fig 3)", 33.1, 38.4, 16.5),
        ("Fig 3: adjust layers 6,7: 2048 units", 38.2, 40.2, 17.6),
        ("Fig 3: adjust layers 6,7: 8192 units", 22.0, 38.8, 17.0),
        ("Fig 3: adjust layers 3,4,5: 512,1024,512 maps", 18.8, 37.5, 16.0),
        ("Fig 3: layers 6,7: 8192 units and layers 3,4,5: 512,1024,512", 10.0, 38.3, 16.9),
    ],
    columns=["model", "train_top1", "val_top1", "val_top5"],
)

# Table 4: Caltech-101 mean per-class accuracy % (mean, sd) at 15 and 30 training images per class.
TABLE4 = pd.DataFrame(
    [
        ("Bo et al. 2013", None, None, 81.4, 0.33),
        ("Jianchao et al. 2009", 73.2, None, 84.3, None),
        ("non-pretrained convnet", 22.8, 1.5, 46.5, 1.7),
        ("ImageNet-pretrained convnet", 83.8, 0.5, 86.5, 0.5),
    ],
    columns=["method", "acc15_mean", "acc15_sd", "acc30_mean", "acc30_sd"],
)

# Table 5: Caltech-256 accuracy % (mean, sd) at 15/30/45/60 training images per class.
TABLE5 = pd.DataFrame(
    [
        ("Sohn et al. 2011", 35.1, None, 42.1, None, 45.7, None, 47.9, None),
        ("Bo et al. 2013", 40.5, 0.4, 48.0, 0.2, 51.9, 0.2, 55.2, 0.3),
        ("non-pretrained", 9.0, 1.4, 22.5, 0.7, 31.2, 0.5, 38.8, 1.4),
        ("ImageNet-pretrained", 65.7, 0.2, 70.6, 0.2, 72.7, 0.4, 74.2, 0.3),
    ],
    columns=["method", "acc15_mean", "acc15_sd", "acc30_mean", "acc30_sd", "acc45_mean", "acc45_sd",
             "acc60_mean", "acc60_sd"],
)

# Table 6: PASCAL VOC 2012 test "Acc %" per class: [A] Sande et al., [B] Yan et al., ours.
TABLE6 = pd.DataFrame(
    [
        ("aeroplane", 92.0, 97.3, 96.0), ("bicycle", 74.2, 84.2, 77.1), ("bird", 73.0, 80.8, 88.4),
        ("boat", 77.5, 85.3, 85.5), ("bottle", 54.3, 60.8, 55.8), ("bus", 85.2, 89.9, 85.8),
        ("car", 81.9, 86.8, 78.6), ("cat", 76.4, 89.3, 91.2), ("chair", 65.2, 75.4, 65.0),
        ("cow", 63.2, 77.8, 74.4), ("diningtable", 63.2, 77.8, 67.7), ("dog", 68.9, 83.0, 87.8),
        ("horse", 78.2, 87.5, 86.0), ("motorbike", 81.0, 90.1, 85.1), ("person", 91.6, 95.0, 90.9),
        ("pottedplant", 55.9, 57.8, 52.2), ("sheep", 69.4, 79.2, 83.6), ("sofa", 65.4, 73.4, 61.1),
        ("train", 86.7, 94.5, 91.8), ("tvmonitor", 77.4, 80.7, 76.1),
    ],
    columns=["class", "sande2012", "yan2012", "zf2014"],
)
TABLE6_MEAN = {"sande2012": 74.3, "yan2012": 82.2, "zf2014": 79.0}

# Table 7: per-layer linear classifiers on frozen features, accuracy % (mean, sd).
TABLE7 = pd.DataFrame(
    [
        ("SVM", 1, 44.8, 0.7, 24.6, 0.4),
        ("SVM", 2, 66.2, 0.5, 39.6, 0.3),
        ("SVM", 3, 72.3, 0.4, 46.0, 0.3),
        ("SVM", 4, 76.6, 0.4, 51.3, 0.1),
        ("SVM", 5, 86.2, 0.8, 65.6, 0.3),
        ("SVM", 7, 85.5, 0.4, 71.7, 0.2),
        ("softmax", 5, 82.9, 0.4, 65.7, 0.5),
        ("softmax", 7, 85.4, 0.4, 72.6, 0.1),
    ],
    columns=["classifier", "layer", "cal101_mean", "cal101_sd", "cal256_mean", "cal256_sd"],
)

# Figure 9: the reference line of Bo et al. 2013 (best 60-image Caltech-256 result).
BO_2013_CALTECH256_60 = 55.2

# Fig 3 layer output sizes at 224 input (conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5).
FIG3_SIZES = (110, 55, 26, 13, 13, 13, 13, 6)

# The paper's claims, as the last section of the paper summary (shared/paper/zeiler_fergus_2014.md) lists them;
# src/zfrepro/report/claims.py tests each on a run's results.
CLAIMS = (
    "Layer-1 filters with feature scale clipping have no single dominating filter; without it a few dominate.",
    "The 7x7 stride-2 first layer gives more distinctive layer-1 features and fewer \"dead\" filters than 11x11 "
    "stride 4, and removes the aliasing of layer 2 (Fig 6).",
    "The ZF model beats the Krizhevsky replication by ~2 points top-1 on validation (Table 2).",
    "Removing layers 6,7 or layers 3,4 each costs a few points; removing 3,4,6,7 collapses (Table 3). Depth "
    "matters more than any single layer.",
    "Bigger middle conv layers help; bigger fully connected layers overfit (Table 3).",
    "Small transformations change layer-1 features a lot and layer-7 features little; the output is robust to "
    "translation and scale but not rotation (Fig 5).",
    "Occluding the object drops the correct-class probability sharply; the strongest layer-5 map responds to the "
    "object (Fig 7).",
    "Eyes and nose give lower correspondence Delta than random regions at layer 5 (Table 1).",
    "Lower layers converge within a few epochs; upper ones only after many (Fig 4).",
    "Pretrained features + retrained softmax beat training from scratch by a wide margin on small data "
    "(Tables 4, 5) and need few images per class (Fig 9).",
    "Higher layers give more discriminative features; accuracy grows with layer depth (Table 7).",
)
