"""Every ```python block of README.md runs as written.

A block runs on its own unless the paragraph just before it says that it continues the previous
block ("continues the previous block"); such a chain runs in one namespace, in README order. Each
chain is one test case, executed in a fresh interpreter (``python -c``) whose working directory is
a temporary folder, with a timeout. A block that needs a missing optional dependency fails: nothing
here skips. Tracebacks point at README.md's own line numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TIMEOUT_S = 120
CONTINUES = re.compile(r"continues the previous block", re.I)

RUNNER = """
import json, sys
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__readme__"}
for line, code in blocks:
    # pad so that tracebacks give README.md's line numbers
    exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), namespace)
    print(f"README.md:{line}: ran", flush=True)
"""


def _blocks(text: str) -> list[dict]:
    """The README's python blocks: first code line, code, the heading above, whether it continues."""
    blocks = []
    previous_end = 0
    for match in re.finditer(r"^```python\n(.*?)^```[ \t]*$", text, re.S | re.M):
        before = text[previous_end:match.start()].rstrip()
        paragraph = re.split(r"\n\s*\n", before)[-1] if before else ""
        headings = re.findall(r"^#+ (.+)$", text[:match.start()], re.M)
        blocks.append({
            "line": text.count("\n", 0, match.start(1)) + 1,
            "code": match.group(1),
            "heading": headings[-1] if headings else "top",
            "continues": bool(blocks) and bool(CONTINUES.search(paragraph)),
        })
        previous_end = match.end()
    return blocks


def _chains() -> list[list[dict]]:
    chains: list[list[dict]] = []
    for block in _blocks(README.read_text(encoding="utf-8")):
        if block["continues"]:
            chains[-1].append(block)
        else:
            chains.append([block])
    return chains


CHAINS = _chains()


def _case_id(chain: list[dict]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", chain[0]["heading"].lower()).strip("-")
    return f"L{chain[0]['line']}-{slug}" + (f"+{len(chain) - 1}" if len(chain) > 1 else "")


def test_the_readme_has_its_blocks():
    blocks = [block for chain in CHAINS for block in chain]
    assert len(blocks) >= 9, [b["line"] for b in blocks]
    assert any("LocalCluster" in b["code"] for b in blocks)
    assert not any("tcp://scheduler" in line.split("#")[0] for b in blocks for line in b["code"].splitlines())


@pytest.mark.parametrize("chain", CHAINS, ids=[_case_id(c) for c in CHAINS])
def test_readme_block_runs(chain, tmp_path):
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps([(block["line"], block["code"]) for block in chain]))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if env.pop("PYTEST_XDIST_WORKER", None):
        env["OMP_NUM_THREADS"] = "1"  # one worker per core, as conftest.py does for torch
    try:
        done = subprocess.run([sys.executable, "-c", RUNNER, str(spec)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"README.md:{chain[0]['line']} did not finish in {TIMEOUT_S} s\n{exc.stdout or ''}{exc.stderr or ''}")
    assert done.returncode == 0, (
        f"README.md:{chain[0]['line']} ({chain[0]['heading']}) failed with exit code {done.returncode}\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    assert done.stdout.count(": ran") == len(chain)
