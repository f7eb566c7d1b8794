"""Runs a Jupyter notebook top to bottom on a fresh IPython kernel, as a Hearth job.

The worker starts this instead of `python -u NOTEBOOK` when a job's entry is an .ipynb file. It
speaks the Jupyter messaging protocol to a real ipykernel through jupyter_client (the reference
client, so magics, `!shell` lines, rich display and tracebacks behave as in Jupyter), reports each
cell's outputs while the cell runs, and writes the executed notebook (outputs and execution
counts, nbformat 4) back over the notebook after every cell, so the artifact is there even when
the run stops part way. With --events (as the worker runs it) the outputs go to stdout as JSON
lines, as a kernel session's do, with the request id `cell_<index in the notebook>` (so an editor
that has the notebook open puts them in their cells); without it, as text.

Standard library plus jupyter_client and ipykernel only: it runs on the provider's interpreter.
Exit status: 0 when every cell ran (with --allow-errors, also when some raised: their errors are
in the notebook), 1 when a cell raised (the run stops there), 2 for a notebook that cannot be
read or a Python without ipykernel, 3 when the kernel died.
"""

import argparse
import json
import os
import queue
import signal
import sys
import tempfile
import time

ANSI_DIM = "\x1b[2m"
ANSI_RESET = "\x1b[0m"


def log(msg):
    sys.stderr.write(f"{ANSI_DIM}[hearth] {msg}{ANSI_RESET}\n")
    sys.stderr.flush()


def load_notebook(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a Jupyter notebook (no 'cells' list)")
    major = nb.get("nbformat", 4)
    if major != 4:
        raise ValueError(f"nbformat {major} is not supported (only 4); convert it with `jupyter nbconvert --to notebook`")
    return nb


def source_of(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def save_notebook(nb, path):
    """Atomic: a reader (or a kill) never sees half a notebook."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nbrun-", suffix=".ipynb", dir=d)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def multiline(text):
    """nbformat stores text as a list of lines, each keeping its newline."""
    if isinstance(text, list):
        return text
    lines = text.splitlines(keepends=True)
    return lines


def bundle(data):
    return {k: (multiline(v) if isinstance(v, str) and (k.startswith("text/") or k == "image/svg+xml") else v) for k, v in data.items()}


def describe(data):
    """What a person reading the log sees of a rich output."""
    if "text/plain" in data:
        return data["text/plain"]
    kinds = ", ".join(sorted(data))
    return f"<{kinds}>"


def cell_id(index):
    return f"cell_{index:08d}"



def this_interpreter():
    """A kernelspec manager whose one kernel is this interpreter. jupyter_client ignores
    KernelManager.kernel_cmd when a "python3" kernelspec is installed (Debian ships one naming
    /usr/bin/python3), which would run the kernel outside the session's environment."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            argv = [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
            return KernelSpec(argv=argv, display_name="Python 3", language="python", resource_dir="")

    return ThisInterpreter()

class Runner:
    def __init__(self, nb_path, allow_errors, cell_timeout, events=False):
        self.events = events
        self.nb_path = nb_path
        self.allow_errors = allow_errors
        self.cell_timeout = cell_timeout
        self.km = None
        self.kc = None
        self.stopping = False

    def start_kernel(self):
        # The kernel's own files go to the private /tmp, never the provider's home.
        scratch = tempfile.mkdtemp(prefix="hearth-kernel-")
        os.environ.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(scratch, "runtime"))
        os.environ.setdefault("IPYTHONDIR", os.path.join(scratch, "ipython"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(scratch, "matplotlib"))
        # ipykernel's debugger otherwise warns about frozen modules at every start.
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        from jupyter_client.manager import KernelManager

        # ipykernel's native kernel: this very interpreter (a venv's python as itself), whatever
        # kernelspecs are installed.
        # IPC sockets in a folder only this user may enter, not TCP on 127.0.0.1 (see hearth_kernel.py).
        ipc = os.path.join(tempfile.mkdtemp(prefix="hearth-ipc-"), "kernel")
        self.km = KernelManager(kernel_name="python3", kernel_spec_manager=this_interpreter(), transport="ipc", ip=ipc)
        # The kernel process's own output (os.write(1, …), C libraries) goes to stderr, the job's
        # log: stdout carries the events and must hold nothing else.
        self.km.start_kernel(cwd=os.path.dirname(os.path.abspath(self.nb_path)) or ".", stdout=sys.stderr, stderr=sys.stderr)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def shutdown(self):
        try:
            if self.kc:
                self.kc.stop_channels()
            if self.km and self.km.is_alive():
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass

    def emit(self, rid, msg_type, content):
        sys.stdout.write(json.dumps({"requestId": rid, "msgType": msg_type, "content": content}, default=str) + "\n")
        sys.stdout.flush()

    def run_cell(self, cell, rid):
        """Executes one cell; returns (outputs, execution_count, error or None, whether the kernel died)."""
        if self.events:
            self.emit(rid, "execute_request", {"code": source_of(cell)})
        msg_id = self.kc.execute(source_of(cell), store_history=True, allow_stdin=False, stop_on_error=False)
        outputs = []
        displays = {}
        count = None
        error = None
        deadline = time.monotonic() + self.cell_timeout if self.cell_timeout else None
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                if not self.km.is_alive():
                    return outputs, count, "the kernel died while the cell ran (out of memory, or os._exit)", True
                if deadline and time.monotonic() > deadline:
                    self.km.interrupt_kernel()
                    deadline = None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t = msg["msg_type"]
            c = msg["content"]
            if self.events and t in ("status", "execute_input", "stream", "display_data", "update_display_data", "execute_result", "error", "clear_output"):
                self.emit(rid, t, c)
            if t == "status" and c.get("execution_state") == "idle":
                break
            if t == "execute_input":
                count = c.get("execution_count")
            elif t == "stream":
                if not self.events:
                    stream = sys.stdout if c["name"] == "stdout" else sys.stderr
                    stream.write(c["text"])
                    stream.flush()
                if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == c["name"]:
                    outputs[-1]["text"] = multiline("".join(outputs[-1]["text"]) + c["text"])
                else:
                    outputs.append({"output_type": "stream", "name": c["name"], "text": multiline(c["text"])})
            elif t in ("display_data", "execute_result"):
                out = {"output_type": t, "data": bundle(c.get("data", {})), "metadata": c.get("metadata", {})}
                if t == "execute_result":
                    out["execution_count"] = c.get("execution_count")
                did = c.get("transient", {}).get("display_id")
                if did:
                    displays.setdefault(did, []).append(len(outputs))
                outputs.append(out)
                if not self.events:
                    text = describe(c.get("data", {}))
                    prefix = f"Out[{c.get('execution_count')}]: " if t == "execute_result" else ""
                    sys.stdout.write(prefix + text + ("" if text.endswith("\n") else "\n"))
                    sys.stdout.flush()
            elif t == "update_display_data":
                did = c.get("transient", {}).get("display_id")
                for i in displays.get(did, []):
                    outputs[i]["data"] = bundle(c.get("data", {}))
                    outputs[i]["metadata"] = c.get("metadata", {})
            elif t == "clear_output":
                outputs.clear()
                displays.clear()
            elif t == "error":
                outputs.append({"output_type": "error", "ename": c["ename"], "evalue": c["evalue"], "traceback": c["traceback"]})
                if not self.events:
                    sys.stderr.write("\n".join(c["traceback"]) + "\n")
                    sys.stderr.flush()
                error = f"{c['ename']}: {c['evalue']}"
        return outputs, count, error, False

    def run(self):
        try:
            nb = load_notebook(self.nb_path)
        except (OSError, ValueError) as e:
            log(f"cannot read {self.nb_path}: {e}")
            return 2
        code_cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
        index_of = {id(c): i for i, c in enumerate(nb["cells"])}
        for c in code_cells:
            c["outputs"] = []
            c["execution_count"] = None
        save_notebook(nb, self.nb_path)
        log(f"starting a kernel for {os.path.basename(self.nb_path)} ({len(code_cells)} code cells)")
        self.start_kernel()
        status = 0
        try:
            for i, cell in enumerate(code_cells, 1):
                if self.stopping:
                    break
                if not source_of(cell).strip():
                    continue
                log(f"cell {i}/{len(code_cells)}")
                rid = cell_id(index_of[id(cell)])
                outputs, count, error, died = self.run_cell(cell, rid)
                if self.events:
                    self.emit(rid, "execute_reply", {"status": "error" if error else "ok", "execution_count": count})
                cell["outputs"] = outputs
                cell["execution_count"] = count
                save_notebook(nb, self.nb_path)
                if died:
                    log(error)
                    return 3
                if error:
                    # With --allow-errors the errors are part of the result, as with nbconvert.
                    status = 0 if self.allow_errors else 1
                    if not self.allow_errors:
                        log(f"cell {i} raised {error}; stopping (pass --allow-errors to run the rest)")
                        break
            return status
        finally:
            self.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook")
    ap.add_argument("--allow-errors", action="store_true", help="run every cell even after one raises")
    ap.add_argument("--cell-timeout", type=float, default=0, help="interrupt a cell after this many seconds (0: never)")
    ap.add_argument("--events", action="store_true", help="report outputs as JSON lines on stdout (as the worker runs it)")
    a = ap.parse_args()
    runner = Runner(a.notebook, a.allow_errors, a.cell_timeout, a.events)

    def on_term(signum, _frame):
        # Cancel: stop after the running cell is interrupted; the notebook so far stays saved.
        runner.stopping = True
        if runner.km is not None:
            try:
                runner.km.interrupt_kernel()
            except Exception:
                pass

    signal.signal(signal.SIGTERM, on_term)
    try:
        import jupyter_client  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError as e:
        log(f"this worker's Python cannot run notebooks: {e} (the provider installs ipykernel and jupyter_client)")
        return 2
    return runner.run()


if __name__ == "__main__":
    sys.exit(main())
