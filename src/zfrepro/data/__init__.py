"""Data: images in, prepared splits out.

- `synthetic`: the generator of look-alikes of ImageNet, Caltech-101/256 and VOC 2012 in their real layouts;
- `datasets`: the real datasets, opened with torchvision's own classes;
- `preprocess`: decoding, resizing and the ten crops;
- `prepare`: decode and index a dataset once, with its mean image;
- `splits`: read a prepared split as batches (memory cache or streaming).
"""
