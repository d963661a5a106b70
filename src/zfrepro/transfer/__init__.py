"""Transfer of the ImageNet features to Caltech-101, Caltech-256 and PASCAL VOC 2012 (section 5).

- `transfer`: preparing the sets, random splits, frozen features, the from-scratch baseline;
- `classifiers`: softmax and SVM on frozen features, VOC average precision.
"""
