"""Table 7's linear SVM: the classifier we use (libsvm's linear-kernel SVC, `zfrepro.transfer.classifiers`) vs
scikit-learn's other linear SVM, liblinear's LinearSVC, fitted on the same frozen features and split.

Both follow per-feature standardisation, with the same C. Prints seconds per fit, the test accuracy of each
and the ratio LinearSVC / ours (> 1: ours is faster). Reads the features the workflow cached, so run it
after `make reproduce` (or at least `snakemake results/tables/table7_layers.md`).

    .venv/bin/python benchmarks/svm_solvers.py                     # Caltech-256 conv1 and fc7 features
    .venv/bin/python benchmarks/svm_solvers.py --dataset caltech101 --layers conv3 conv5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from timing import best_of

from zfrepro.transfer.classifiers import make_classifier, mean_per_class_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", default="results/features/zf/seed0", help="{dataset}/all/{layer}.pt below")
    parser.add_argument("--splits", default="results/transfer/splits", help="{dataset}.json below")
    parser.add_argument("--dataset", default="caltech256", choices=["caltech101", "caltech256"])
    parser.add_argument("--layers", nargs="+", default=["conv1", "fc7"])
    parser.add_argument("--C", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)

    splits = json.loads((Path(args.splits) / f"{args.dataset}.json").read_text())
    n = str(max(splits["sizes"]))
    train, test = splits["splits"][0]["train"][n], splits["splits"][0]["test"]
    cpu = torch.device("cpu")
    for layer in args.layers:
        data = torch.load(Path(args.features) / args.dataset / "all" / f"{layer}.pt", weights_only=True)
        x, y = data["features"].float().numpy(), data["labels"].numpy()
        x_train, y_train = x[train], y[train]
        models = {"ours (SVC, linear kernel)": make_classifier("svm", {"C": args.C}),
                  "LinearSVC": make_pipeline(StandardScaler(), LinearSVC(C=args.C, random_state=0))}
        fits = {name: (lambda m=m, xs=x_train, ys=y_train: m.fit(xs, ys)) for name, m in models.items()}
        times = best_of(fits, cpu, args.repeats)
        print(f"{args.dataset} {layer}: {len(train)} training images ({n} per class) x {x.shape[1]} features")
        for name, model in models.items():
            accuracy = mean_per_class_accuracy(y[test], model.predict(x[test]))
            print(f"  {name:26s} {times[name]:7.2f} s per fit, test accuracy {accuracy:.1f}%")
        print(f"  ratio LinearSVC / ours: {times['LinearSVC'] / times['ours (SVC, linear kernel)']:.1f}")


if __name__ == "__main__":
    main()
