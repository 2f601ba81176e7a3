"""How long `trialdesk demo --no-serve` takes, by phase (the demo prints them), in a fresh process.

    python benchmarks/demo.py [--persons 20000] [--repeat 1]

Each run writes into a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "import sys; from trialdesk.cli import app; sys.argv[0] = 'trialdesk'; app()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1)
    a = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"COLUMNS": "200"}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    for i in range(a.repeat):
        with tempfile.TemporaryDirectory(prefix="trialdesk-demo-bench-") as tmp:
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-c", CLI, "demo", "--no-serve", "--persons", str(a.persons), "--out", tmp],
                                 env=env, capture_output=True, text=True, check=True)
            wall = time.monotonic() - started
        line = next(m.group(0) for m in re.finditer(r"demo built in .*", run.stdout))
        print(f"run {i + 1}: persons {a.persons:,}; wall {wall:.1f} s (with interpreter start-up); {line}")


if __name__ == "__main__":
    main()
