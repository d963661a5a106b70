"""Transfer of the ImageNet features to Caltech-101, Caltech-256 and PASCAL VOC 2012 (section 5).

- `prepare`: decode a transfer dataset once (Caltech: all.pt; VOC: train.pt, val.pt);
- `splits`: the random train/test splits;
- `features`: frozen features of the ImageNet model;
- `scratch`: the non-pretrained baseline (the same network trained from scratch on a split);
- `classifiers`: softmax and SVM on frozen features, VOC average precision.
"""
