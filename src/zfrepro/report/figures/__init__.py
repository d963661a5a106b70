"""The paper's figures, drawn from computed data (nothing is recomputed here); each writes PNG + PDF.

- `style`: what every figure shares (paper style, `save_figure`, `normalize_for_display`, tiles, mosaics);
- `deconvnet`: Fig 1 (deconvnet, unpooling), Fig 2 (top-9), Fig 4 (evolution), Fig 6 (filters, projections);
- `architecture`: Fig 3 and `architecture_table`;
- `invariance` (Fig 5), `occlusion` (Fig 7), `correspondence` (Fig 8), `transfer` (Fig 9).
"""
