"""Run Axolotl through its documented entry points and follow it: `python -m axolotl.cli.train
CONFIG` for one process, `accelerate launch -m axolotl.cli.train CONFIG` for several processes,
DeepSpeed or FSDP (`command`).

Axolotl runs in a child process: a crash, an OOM or Ctrl-C there never leaves this process in a
half-imported CUDA/bitsandbytes state, and the command is the documented one. Its whole output goes
to a log file; the Trainer's metric lines (`{'loss': ..., 'grad_norm': ...}`) are parsed as they
arrive into a loss curve with wall-clock times, and drive a progress bar.
"""

from __future__ import annotations

import ast
import codecs
import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import LorabenchError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
_METRICS = re.compile(r"\{'[A-Za-z_/]+': [^{}]*\}")
_DROPPED = re.compile(r"Dropped (\d+) (sequences outside valid range|long samples|short sequences)[^\n\r]*")
_ERROR = re.compile(r"^\s*(\w+(Error|Exception)|RuntimeError|CUDA out of memory)\b.*")


def axolotl_env(*, base: dict | None = None) -> dict:
    """The environment Axolotl needs here: offline-safe, no trackers, the venv's scripts on PATH."""
    env = dict(os.environ if base is None else base)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("WANDB_MODE", "disabled")
    env.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Threads: the user's OMP_NUM_THREADS when set, else torch's default (all physical cores). On
    # an idle 2-core machine two threads ran steps faster than one ("Embedded training" in
    # benchmarks/RESULTS.md); on a machine busy with other work they contend (one step took 7 s to
    # 147 s), and OMP_NUM_THREADS=1 is the steadier choice there.
    from harness import hub

    if not hub.hub_reachable():
        env["HF_HUB_OFFLINE"] = "1"
        env["HF_DATASETS_OFFLINE"] = "1"
    return env


def command(config: Path, *, num_processes: int = 1, ray: bool = False, distributed: bool = False) -> list[str]:
    """Axolotl's documented entry point. One process without DeepSpeed/FSDP needs no launcher:
    `python -m axolotl.cli.train` is what `accelerate launch` would run, minus ~14 s of its own
    start-up on 2 cores (measured: 25 s vs 39 s to a config error)."""
    if ray or (num_processes == 1 and not distributed):
        # (Ray Train places its workers itself: its driver is a plain process on the head node.)
        return [sys.executable, "-m", "axolotl.cli.train", str(config)]
    accelerate = Path(sys.executable).parent / "accelerate"
    launcher = [str(accelerate)] if accelerate.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    if launcher[0] == str(accelerate):
        launcher.append("launch")
    # Explicit flags: without an accelerate config file, accelerate otherwise warns and guesses.
    flags = ["--num_processes", str(num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*launcher, *flags, "-m", "axolotl.cli.train", str(config)]


@dataclass
class RunResult:
    returncode: int
    log_path: Path
    wall_s: float
    train: list[dict] = field(default_factory=list)  # one per logged step, with "t" (s since start)
    evals: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)  # the Trainer's final train_runtime etc.
    dropped: list[dict] = field(default_factory=list)
    error: str | None = None


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class LogFollower:
    """Feeds on Axolotl's output (tqdm redraws with \\r, logs with \\n) and collects metrics."""

    def __init__(self, result: RunResult, start: float, on_step=None):
        self.result, self.start, self.on_step = result, start, on_step
        self._partial = ""

    def feed(self, text: str) -> None:
        parts = re.split(r"[\r\n]", self._partial + text)
        self._partial = parts.pop()
        for part in parts:
            self._segment(part)

    def close(self) -> None:
        if self._partial:
            self._segment(self._partial)
            self._partial = ""

    def _segment(self, seg: str) -> None:
        for m in _METRICS.finditer(seg):
            try:
                raw = ast.literal_eval(m.group(0))
            except (ValueError, SyntaxError):
                continue
            metrics = {k: _number(v) for k, v in raw.items()}
            if "train_runtime" in metrics:
                self.result.summary = metrics
            elif "eval_loss" in metrics:
                metrics["t"] = round(time.monotonic() - self.start, 3)
                metrics["after_step"] = len(self.result.train)
                self.result.evals.append(metrics)
            elif "loss" in metrics:
                metrics["t"] = round(time.monotonic() - self.start, 3)
                metrics["step"] = len(self.result.train) + 1
                self.result.train.append(metrics)
                if self.on_step:
                    self.on_step(metrics)
        for m in _DROPPED.finditer(seg):
            self.result.dropped.append({"rows": int(m.group(1)), "message": m.group(0).strip()})
        err = _ERROR.match(seg)
        if err:
            self.result.error = err.group(0).strip()[:300]


def run(
    config: Path,
    *,
    log_path: Path,
    total_steps: int | None,
    num_processes: int = 1,
    ray: bool = False,
    distributed: bool = False,
    progress: bool = True,
) -> RunResult:
    """Run Axolotl on `config`; return what it reported. Raises a one-line error if it fails."""
    from harness import console

    cmd = command(config, num_processes=num_processes, ray=ray, distributed=distributed)
    log.debug("running: %s", " ".join(cmd))
    log.info("Axolotl's full output: %s", log_path)
    start = time.monotonic()
    result = RunResult(returncode=-1, log_path=log_path, wall_s=0.0)
    bar = console.Progress(total_steps, 0, "step", disable=not progress)
    bar.now("training (Axolotl starting)")

    def on_step(m: dict) -> None:
        bar.now(f"training, loss {m.get('loss')}")
        bar.advance()

    follower = LogFollower(result, start, on_step)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as logf:
        logf.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=axolotl_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(65536):
                text = decoder.decode(chunk)
                logf.write(text)
                follower.feed(text)
            proc.wait()
        except BaseException:
            # Ctrl-C or an error here: stop Axolotl (and accelerate's children) before leaving.
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        finally:
            follower.close()
            bar.close()
    result.returncode = proc.returncode
    result.wall_s = round(time.monotonic() - start, 2)
    if proc.returncode != 0:
        why = result.error or f"exit status {proc.returncode}"
        raise LorabenchError(f"Axolotl failed ({why}): read {log_path} for the whole output")
    return result
