"""The task supervisor: ``python -m runvoy_template.task TASK_DIR`` runs the command of TASK_DIR/spec.json,
writes every output line to TASK_DIR/output.jsonl as it comes, and the outcome to TASK_DIR/exit.json.

It leads its own session, so a stop signals the supervisor and the command together; on SIGTERM it keeps
collecting output until the command ends. Everything is in files, so any process can watch the task.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path


def _write_json(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # readers see the whole file or none of it


def main(task_dir: Path) -> int:
    spec = json.loads((task_dir / "spec.json").read_text())
    signal.signal(signal.SIGTERM, lambda *_: None)  # the command gets it too (same group); we wait for it
    try:
        child = subprocess.Popen(
            spec["argv"],
            cwd=spec.get("workdir") or None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        _write_json(task_dir / "exit.json", {"failed_to_start": str(exc), "stopped_at": time.time()})
        return 0
    _write_json(task_dir / "running.json", {"pid": child.pid, "started_at": time.time()})
    selector = selectors.DefaultSelector()
    assert child.stdout is not None and child.stderr is not None
    selector.register(child.stdout, selectors.EVENT_READ, "stdout")
    selector.register(child.stderr, selectors.EVENT_READ, "stderr")
    pending = {"stdout": b"", "stderr": b""}
    with open(task_dir / "output.jsonl", "ab") as out:

        def emit(stream: str, line: bytes) -> None:
            text = line.decode("utf-8", errors="replace")
            out.write(json.dumps({"t": time.time(), "s": stream, "m": text}).encode() + b"\n")

        while selector.get_map():
            for key, _ in selector.select():
                stream = str(key.data)
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    if pending[stream]:
                        emit(stream, pending[stream])
                    continue
                *lines, pending[stream] = (pending[stream] + chunk).split(b"\n")
                for line in lines:
                    emit(stream, line)
            out.flush()  # whole lines only: a reader never sees half a record
        code = child.wait()
    result: dict[str, object] = {"stopped_at": time.time()}
    if code < 0:
        result["signal"] = -code
    else:
        result["exit_code"] = code
    _write_json(task_dir / "exit.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
