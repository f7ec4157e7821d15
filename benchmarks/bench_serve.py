"""A bounded load run against ``sklearn-imgcls serve``: requests/s, p50/p99 latency, errors.

A small CNNClassifier is fitted on scikit-learn's 8x8 digits and saved; the
command line serves it in a subprocess (``sklearn-imgcls serve MODEL --port 0
--no-access-log --threads T``); ``--clients`` threads each keep one HTTP connection open and
POST one small PNG per request to /predict for ``--duration`` seconds (or
until ``--requests`` requests in all). Latency is measured per request on the
client side. The server's /health counters give the mean batch size
(images predicted per ``predict_proba`` call). Prints a markdown table row.

Usage::

    python benchmarks/bench_serve.py [--clients 8] [--duration 25] [--requests 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from sklearn_imgcls import CNNClassifier

BOUNDARY = "bench-boundary"


def body_for(name: str, data: bytes) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def client(host: str, port: int, bodies: list[bytes], stop_at: float, budget: list[int], lock: threading.Lock,
           latencies: list[float], errors: list[str]) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    i = 0
    while time.monotonic() < stop_at:
        with lock:
            if budget[0] == 0:
                return
            budget[0] -= 1
        start = time.perf_counter()
        try:
            connection.request("POST", "/predict", body=bodies[i % len(bodies)], headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200 or b'"predictions"' not in payload:
                errors.append(f"{response.status}: {payload[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
        latencies.append(time.perf_counter() - start)
        i += 1
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of load")
    parser.add_argument("--requests", type=int, default=0, help="stop after this many requests in all (0: no limit)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--max-batch", type=int, default=32)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    clf = CNNClassifier(image_shape=(1, 8, 8), preset="fast", max_epochs=3, random_state=0, verbose=0).fit(X, y)
    folder = tempfile.mkdtemp(prefix="bench_serve_")
    model = os.path.join(folder, "model.safetensors")
    clf.save(model)
    bodies = []
    for i in range(64):
        buffer = io.BytesIO()
        Image.fromarray(np.uint8(np.round(X[i].reshape(8, 8) * 255))).save(buffer, format="PNG")
        bodies.append(body_for(f"digit{i}.png", buffer.getvalue()))

    command = [sys.executable, "-m", "sklearn_imgcls.cli", "serve", model, "--port", "0", "--no-access-log",
               "--threads", str(args.threads), "--max-batch", str(args.max_batch)]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        while port is None:
            line = server.stderr.readline()
            if not line:
                raise SystemExit("the server stopped before listening")
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            port = found and int(found.group(1))
        threading.Thread(target=server.stderr.read, daemon=True).start()  # keep its pipe from filling up

        def health() -> dict:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/health")
            return json.loads(connection.getresponse().read())

        before, load_before = health(), os.getloadavg()
        latencies: list[float] = []
        errors: list[str] = []
        budget, lock = [args.requests or -1], threading.Lock()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=("127.0.0.1", port, bodies, started + args.duration, budget,
                                                         lock, latencies, errors)) for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        after = health()
    finally:
        server.terminate()
        server.wait(30)

    calls = after["predict_calls"] - before["predict_calls"]
    images = after["images_predicted"] - before["images_predicted"]
    ms = sorted(1000 * t for t in latencies)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    print(f"# {' '.join(sys.argv)}; server: {' '.join(command[1:3])} serve MODEL --port 0 --no-access-log --threads {args.threads}; "
          f"load average (1/5/15 min) "
          f"{'/'.join(f'{v:.2f}' for v in load_before)} before, {'/'.join(f'{v:.2f}' for v in os.getloadavg())} after")
    print("| date | clients | seconds | requests | errors | requests/s | p50 ms | p99 ms | images per predict call |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {datetime.date.today()} | {args.clients} | {elapsed:.1f} | {len(ms)} | {len(errors)} | "
          f"{len(ms) / elapsed:.1f} | {statistics.median(ms):.1f} | {p99:.1f} | {images / max(calls, 1):.2f} |")
    if errors:
        print("first errors:", errors[:3], file=sys.stderr)


if __name__ == "__main__":
    main()
