"""The networks: what they are, how they are trained, how well they classify.

- `spec`: architecture specs as values, their shapes, checks and JSON form;
- `architectures`: the base networks (ZF, Krizhevsky) and every Table 3 variant from the config;
- `network`: the network built from a spec;
- `train`: training as the paper does it (section 3), resumable;
- `evaluate`: top-1/top-5 errors on the centre crop and the ten crops, and loading a trained model.
"""
