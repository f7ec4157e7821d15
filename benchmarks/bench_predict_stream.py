"""Streaming batch prediction: files/s and peak memory for 5,000 and 60,000 PNGs, here and on 1 and 2 Dask workers.

Writes the 60,000 Fashion-MNIST training images as 28x28 PNGs into a folder
once (reused when present), trains a small CNN once, then runs
``sklearn-imgcls predict MODEL DATA --out OUT.csv`` (the console script, in a
child process) over a 5,000-row path table and over the whole folder:

- local: the CLI process alone (torch's default threads, DataLoader workers "auto");
- dask-1 / dask-2: ``--backend dask --scheduler ADDR`` on a LocalCluster of 1 or 2
  single-threaded worker processes started by this script beforehand (its start-up
  is not timed; the CLI's own default cluster would add it).

Peak RSS: ``/usr/bin/time``'s maximum resident set size of the CLI process (its
largest process), and the peak of the summed RSS of the CLI's process tree plus
the Dask workers, polled every 0.1 s. The outputs of every mode are compared
(they must be identical). Prints a markdown table.

    .venv/bin/python benchmarks/bench_predict_stream.py [--folder /tmp/fmnist_pngs] [--sizes 5000 60000]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSOLE = os.path.join(os.path.dirname(sys.executable), "sklearn-imgcls")


def write_pngs(folder: str, n: int = 60_000) -> list[str]:
    from PIL import Image

    from sklearn_imgcls.datasets import load_fashion_mnist

    X, y, _, _ = load_fashion_mnist()
    paths = [os.path.join(folder, f"{i // 1000:03d}", f"{i:05d}.png") for i in range(n)]
    if all(os.path.isfile(p) for p in (paths[0], paths[-1])) and sum(
            len(files) for _, _, files in os.walk(folder)) >= n:
        return paths
    start = time.perf_counter()
    for i, path in enumerate(paths):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(X[i]).save(path)
    print(f"wrote {n} PNGs into {folder} in {time.perf_counter() - start:.0f} s", flush=True)
    return paths


def model_file(folder: str) -> str:
    path = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(path):
        from sklearn_imgcls import CNNClassifier
        from sklearn_imgcls.datasets import load_fashion_mnist

        X, y, _, _ = load_fashion_mnist()
        model = CNNClassifier("simple_cnn", preset="fast", max_epochs=1, image_shape=(1, 28, 28), num_threads=2,
                              random_state=0, verbose=0).fit(X[:5000], y[:5000])
        model.save(path)
    return path


def _tree_rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            members = [process] + process.children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for member in members:
            try:
                total += member.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total


def run(command: list[str], watch: list[psutil.Process]) -> dict:
    """Run ``command`` under /usr/bin/time; poll the RSS of its tree and of ``watch`` (the Dask workers)."""
    with tempfile.NamedTemporaryFile(suffix=".time") as timing:
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        child = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", timing.name, *command],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak, done = [0], threading.Event()

        def poll() -> None:
            me = psutil.Process(child.pid)
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss([me] + watch))
                time.sleep(0.1)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, err = child.communicate()
        seconds = time.perf_counter() - start
        done.set()
        poller.join()
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {err}")
        max_rss_kb = int(open(timing.name).read().split()[-1])
    return {"seconds": seconds, "cli_peak_mb": max_rss_kb / 1024, "tree_peak_mb": peak[0] / 2**20,
            "load": (load_before, os.getloadavg()[0])}


def digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "sklearn_imgcls_fmnist_pngs"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 60000])
    parser.add_argument("--modes", nargs="+", default=["local", "dask-1", "dask-2"])
    parser.add_argument("--chunk-size", type=int, default=1024)
    args = parser.parse_args()

    from dask.distributed import LocalCluster

    paths = write_pngs(args.folder, max(args.sizes))
    model = model_file(args.folder)
    work = tempfile.mkdtemp(prefix="bench_predict_")
    inputs = {}
    for n in args.sizes:
        if n >= len(paths):
            inputs[n] = args.folder  # the whole folder (the model file is not an image: skipped by the listing)
        else:
            table = os.path.join(work, f"paths_{n}.csv")
            with open(table, "w") as handle:
                handle.write("path\n" + "\n".join(paths[:n]) + "\n")
            inputs[n] = table
    results = []
    for mode in args.modes:
        cluster, extra, workers = None, [], []
        if mode.startswith("dask-"):
            cluster = LocalCluster(n_workers=int(mode.split("-")[1]), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            extra = ["--backend", "dask", "--scheduler", cluster.scheduler_address]
            workers = [child for child in psutil.Process().children(recursive=False)]
        try:
            for n in args.sizes:
                out = os.path.join(work, f"{mode}_{n}.csv")
                command = [CONSOLE, "predict", model, inputs[n], "--out", out, "--chunk-size", str(args.chunk_size),
                           *extra]
                result = run(command, workers)
                rows = sum(1 for _ in open(out)) - 1
                assert rows == n, (rows, n)
                results.append({"mode": mode, "n": n, **result, "files_per_s": n / result["seconds"],
                                "sha": digest(out)})
                print(f"{mode} n={n}: {n / result['seconds']:.0f} files/s, CLI peak {result['cli_peak_mb']:.0f} MB, "
                      f"tree+workers peak {result['tree_peak_mb']:.0f} MB", flush=True)
        finally:
            if cluster is not None:
                cluster.close()
    for n in args.sizes:
        shas = {r["sha"] for r in results if r["n"] == n}
        print(f"outputs for {n} files identical across modes: {len(shas) == 1}")
    print(f"\n{datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), chunk size {args.chunk_size}\n")
    print("| mode | files | seconds | files/s | peak RSS CLI (MB) | peak RSS CLI tree + workers (MB) | load avg before/after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        print(f"| {r['mode']} | {r['n']:,} | {r['seconds']:.1f} | {r['files_per_s']:.0f} | {r['cli_peak_mb']:.0f} | "
              f"{r['tree_peak_mb']:.0f} | {r['load'][0]:.2f} / {r['load'][1]:.2f} |")
    if len(args.sizes) > 1:  # start-up (imports, model load, cluster connection) cancels out between two sizes
        print("\nfiles/s after start-up, (n_large - n_small) / (t_large - t_small):")
        for mode in args.modes:
            small, large = (next(r for r in results if r["mode"] == mode and r["n"] == n)
                            for n in (min(args.sizes), max(args.sizes)))
            rate = (large["n"] - small["n"]) / (large["seconds"] - small["seconds"])
            print(f"- {mode}: {rate:.0f} files/s (start-up about {small['seconds'] - small['n'] / rate:.1f} s)")


if __name__ == "__main__":
    main()
