"""The networks: what they are, how they are trained, how well they classify.

- `network`: architecture specs (ZF, Krizhevsky and every Table 3 variant) and the network built from one;
- `train`: training as the paper does it (section 3), resumable;
- `evaluate`: top-1/top-5 errors on the centre crop and the ten crops, and loading a trained model.
"""
