"""How much the torch thread count changes a seeded fit: 1 vs 2 threads, same random_state.

Fits ``CNNClassifier("bn_cnn", max_epochs=2, random_state=0)`` on the first 1,000 digits three
times (1, 2, then 1 thread via ``num_threads``) and counts disagreeing predictions on the other 797.

    python benchmarks/bench_threads_determinism.py
"""

from __future__ import annotations

from sklearn.datasets import load_digits

from sklearn_imgcls import CNNClassifier


def main() -> None:
    X, y = load_digits(return_X_y=True)
    train, test = slice(0, 1000), slice(1000, None)
    predictions = {}
    for threads in (1, 2, 1):
        model = CNNClassifier("bn_cnn", max_epochs=2, num_threads=threads, random_state=0).fit(X[train], y[train])
        predictions.setdefault(threads, []).append(model.predict(X[test]))
    n = len(predictions[1][0])
    print(f"1 vs 1 thread: {int((predictions[1][0] != predictions[1][1]).sum())} of {n} predictions differ")
    print(f"1 vs 2 threads: {int((predictions[1][0] != predictions[2][0]).sum())} of {n} predictions differ")


if __name__ == "__main__":
    main()
