"""A Hearth kernel session: one long-lived IPython kernel, driven over this process's stdio.

The worker starts this inside the job sandbox (with the job's limits) for a kernel session. It
starts a real ipykernel through jupyter_client (the reference client of the Jupyter messaging
protocol: magics, rich display, input() and interrupts behave as in Jupyter) and then:

- reads requests from stdin, one JSON object a line, each with the broker's request id:
  {"requestId": "req_…", "type": "execute", "code": "…"}, "interrupt", "restart", "input_reply"
  (with "value"), "shutdown";
- writes, on stdout, one JSON object a line for every kernel message a request caused, in the
  order the kernel sent them: {"requestId", "msgType", "content"} with Jupyter's own content
  (stream, display_data, update_display_data, execute_result, error, clear_output, execute_input,
  input_request, execute_reply), and the kernel's state with "requestId": null and msgType
  "status" (starting, idle, busy, restarting, dead);
- exits after --idle-minutes without a request or a running cell (0: never), so a forgotten
  kernel does not burn a lease. The kernel's own process output goes to stderr (the job's log).

Standard library plus jupyter_client and ipykernel only: it runs on the provider's interpreter.
"""

import argparse
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time

OUTPUT_TYPES = {
    "stream", "display_data", "update_display_data", "execute_result", "error",
    "clear_output", "execute_input",
}

_out_lock = threading.Lock()
_stdout = sys.stdout


def send(request_id, msg_type, content):
    line = json.dumps({"requestId": request_id, "msgType": msg_type, "content": content}, default=str)
    with _out_lock:
        _stdout.write(line + "\n")
        _stdout.flush()


def log(msg):
    sys.stderr.write(f"[hearth kernel] {msg}\n")
    sys.stderr.flush()



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

class Session:
    def __init__(self, idle_minutes):
        self.idle_s = idle_minutes * 60
        self.km = None
        self.kc = None
        self.lock = threading.RLock()
        # msg_id of an execute on the kernel -> the broker's request id
        self.pending = {}
        # The reply (shell channel) and the last output (iopub) travel apart: a request's
        # execute_reply is said only once both its reply and its iopub idle arrived, so nothing of
        # a cell comes after its reply. msg_id -> {"reply": content or None, "idle": bool}
        self.closing = {}
        self.last_activity = time.monotonic()
        self.state = "starting"
        self.generation = 0
        self.stopping = False

    # ---------- the kernel ----------

    def start_kernel(self):
        from jupyter_client.manager import KernelManager

        self.set_state("starting")
        # ipykernel's native kernel: this very interpreter (a venv's python as itself), whatever
        # kernelspecs are installed.
        # IPC sockets in a folder only this user may enter, not TCP on 127.0.0.1: what one session
        # could otherwise reach of another's kernel (IOPub needs no key to subscribe to).
        ipc = os.path.join(tempfile.mkdtemp(prefix="hearth-ipc-"), "kernel")
        km = KernelManager(kernel_name="python3", kernel_spec_manager=this_interpreter(), transport="ipc", ip=ipc)
        km.start_kernel(cwd=os.getcwd(), stdout=sys.stderr, stderr=sys.stderr)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        with self.lock:
            self.km, self.kc = km, kc
            self.generation += 1
            gen = self.generation
        for target in (self.pump_iopub, self.pump_shell, self.pump_stdin):
            threading.Thread(target=target, args=(kc, gen), daemon=True).start()
        self.set_state("idle")

    def set_state(self, state, request_id=None):
        self.state = state
        send(request_id, "status", {"execution_state": state})

    def current(self, gen):
        return self.generation == gen and not self.stopping

    def request_of(self, msg):
        # Under the lock: handle() holds it from sending an execute until its msg_id is mapped, so
        # the first messages of a very quick cell are never taken for someone else's.
        with self.lock:
            return self.pending.get(msg.get("parent_header", {}).get("msg_id"))

    def messages(self, get, gen):
        """A channel's messages while this kernel (generation) is the current one."""
        while self.current(gen):
            try:
                yield get(timeout=0.5)
            except queue.Empty:
                continue
            except BaseException:  # channels closed by a restart (CancelledError is no Exception)
                return

    def pump_iopub(self, kc, gen):
        for msg in self.messages(kc.get_iopub_msg, gen):
            t = msg["msg_type"]
            rid = self.request_of(msg)
            if t == "status":
                # Busy and idle per request are what the editor shows; the kernel-wide state follows.
                if rid:
                    state = msg["content"].get("execution_state")
                    send(rid, "status", {"execution_state": state})
                    if state == "idle":
                        self.close_part(msg["parent_header"]["msg_id"], idle=True)
                continue
            if t in OUTPUT_TYPES and rid:
                self.last_activity = time.monotonic()
                send(rid, t, msg["content"])

    def pump_shell(self, kc, gen):
        for msg in self.messages(kc.get_shell_msg, gen):
            if msg["msg_type"] != "execute_reply":
                continue
            mid = msg.get("parent_header", {}).get("msg_id")
            c = msg["content"]
            self.close_part(mid, reply={"status": c.get("status"), "execution_count": c.get("execution_count")})

    def close_part(self, mid, reply=None, idle=False):
        """Says a request's execute_reply once its reply and its iopub idle have both come."""
        with self.lock:
            if mid not in self.pending:
                return
            part = self.closing.setdefault(mid, {"reply": None, "idle": False})
            if reply is not None:
                part["reply"] = reply
            if idle:
                part["idle"] = True
            if part["reply"] is None or not part["idle"]:
                return
            del self.closing[mid]
            rid = self.pending.pop(mid)
            self.last_activity = time.monotonic()
            send(rid, "execute_reply", part["reply"])

    def pump_stdin(self, kc, gen):
        for msg in self.messages(kc.get_stdin_msg, gen):
            if msg["msg_type"] == "input_request":
                rid = self.request_of(msg)
                send(rid, "input_request", msg["content"])

    def watch(self):
        """A dead kernel is said at once (not left to look like a hang); an idle session ends."""
        while not self.stopping:
            time.sleep(0.5)
            km = self.km
            if km is not None and not self.stopping and self.state not in ("dead", "restarting", "starting") and not km.is_alive():
                self.fail_pending("the kernel died (out of memory, a crash, or os._exit); restart it")
                self.set_state("dead")
            busy = bool(self.pending)
            if busy:
                self.last_activity = time.monotonic()
            elif self.idle_s and time.monotonic() - self.last_activity > self.idle_s:
                log(f"no request for {int(self.idle_s // 60)} minutes: stopping the kernel")
                self.stop()
                os._exit(0)

    def fail_pending(self, why):
        with self.lock:
            pending = list(self.pending.values())
            self.pending.clear()
            self.closing.clear()
        for rid in pending:
            send(rid, "error", {"ename": "KernelDied", "evalue": why, "traceback": [why]})
            send(rid, "execute_reply", {"status": "aborted", "execution_count": None})

    # ---------- requests ----------

    def handle(self, req):
        self.last_activity = time.monotonic()
        rid = req.get("requestId")
        t = req.get("type")
        if t == "execute":
            if self.state == "dead" or self.kc is None:
                send(rid, "error", {"ename": "KernelDied", "evalue": "the kernel is dead; restart it", "traceback": ["the kernel is dead; restart it"]})
                send(rid, "execute_reply", {"status": "aborted", "execution_count": None})
                return
            with self.lock:
                mid = self.kc.execute(req.get("code", ""), store_history=True, allow_stdin=True, stop_on_error=True)
                self.pending[mid] = rid
        elif t == "interrupt":
            if self.km is not None and self.km.is_alive():
                self.km.interrupt_kernel()
        elif t == "input_reply":
            if self.kc is not None:
                self.kc.input(str(req.get("value", "")))
        elif t == "restart":
            self.restart(rid)
        elif t == "shutdown":
            self.stop()
            os._exit(0)
        else:
            log(f"ignoring an unknown request {t!r}")

    def restart(self, rid):
        self.set_state("restarting", rid)
        self.fail_pending("the kernel was restarted")
        old_km, old_kc = self.km, self.kc
        with self.lock:
            self.generation += 1  # the old pumps stop
            self.km = self.kc = None
        try:
            if old_kc is not None:
                old_kc.stop_channels()
            if old_km is not None:
                old_km.shutdown_kernel(now=True)
        except Exception as e:
            log(f"stopping the old kernel: {e}")
        self.start_kernel()
        send(rid, "status", {"execution_state": "idle"})

    def stop(self):
        self.stopping = True
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            if self.km is not None:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle-minutes", type=float, default=60)
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="hearth-kernel-")
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(scratch, "runtime"))
    os.environ.setdefault("IPYTHONDIR", os.path.join(scratch, "ipython"))
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(scratch, "matplotlib"))
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        import jupyter_client  # noqa: F401
        import ipykernel  # noqa: F401
    except ImportError as e:
        log(f"this worker's Python cannot run a kernel: {e} (the provider installs ipykernel and jupyter_client)")
        return 2
    s = Session(a.idle_minutes)

    def on_term(_signum, _frame):
        s.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    # Interrupts are for the kernel, never this bridge.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    s.start_kernel()
    threading.Thread(target=s.watch, daemon=True).start()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError:
            log("ignoring a request that is not JSON")
            continue
        try:
            s.handle(req)
        except Exception as e:  # one bad request must not end the session
            log(f"request {req.get('type')!r} failed: {e}")
    # stdin closed: the worker is gone or stopping the session.
    s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
