"""What the paper learns from a trained network (sections 2, 4 and 5).

- `deconvnet`: projecting activations back to pixels (section 2.1);
- `mining`: the top-9 activations of every feature map in one pass;
- `projections`: the data of Figs 1, 2, 4 and 6 (projections, evolution, unpooling);
- `filters`: layer-1 filter statistics (Fig 6, claims 1 and 2);
- `invariance` (Fig 5), `occlusion` (Fig 7), `correspondence` (Table 1, Fig 8);
- `overlap`: Caltech images that are also ImageNet training images (section 5).
"""
