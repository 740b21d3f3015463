"""Cold start of one Lambda binary, measured against a Lambda Runtime API emulator of ours on
loopback: spawn the binary with AWS_LAMBDA_RUNTIME_API pointing here, hand it one event on its
first `next`, and time from spawn to the first response posted (and, apart, from spawn to that
first `next`: the init phase). Peak memory (VmHWM) is read from
/proc while the process is still alive, right after that response. Used by scripts/bench.

usage: coldstart.py RUNS ENV_FILE OUT_JSON NAME=BINARY:EVENT_FILE...
"""
import json, os, statistics, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Emulator(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event, self.handed, self.done = event, False, threading.Event()
        self.answer, self.answered_at, self.first_next_at = None, None, None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        s = self.server
        if self.path.endswith("/runtime/invocation/next"):
            if s.handed:  # the second `next`: the function waits here until it is stopped
                s.done.wait(30)
                time.sleep(30)
                return
            s.handed = True
            s.first_next_at = time.perf_counter()  # init is over: the runtime asks for work
            body = s.event
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        s = self.server
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        if s.answered_at is None:
            s.answered_at = time.perf_counter()
            s.answer = (self.path.rsplit("/", 1)[-1], data)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        s.done.set()


def peak_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def once(binary, event, env):
    srv = Emulator(event)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    e = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_address[1]}")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = srv.done.wait(30)
    peak = peak_kib(p.pid)
    p.kill()
    p.wait()
    srv.shutdown()
    srv.server_close()
    if not ok:
        raise SystemExit(f"{binary}: no response within 30 s")
    kind, data = srv.answer
    status = None
    try:
        status = json.loads(data).get("statusCode")
    except Exception:
        pass
    return (srv.answered_at - t0) * 1000, peak, kind, status, (srv.first_next_at - t0) * 1000


def main():
    runs, env_file, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for line in open(env_file):
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    env.update(AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench",
               AWS_LAMBDA_LOG_STREAM_NAME="bench")
    results = {}
    for spec in sys.argv[4:]:
        name, rest = spec.split("=", 1)
        binary, event_file = rest.split(":", 1)
        event = open(event_file, "rb").read()
        once(binary, event, env)  # page cache warm: every measured run starts from the same disk state
        samples = [once(binary, event, env) for _ in range(runs)]
        ms = [s[0] for s in samples]
        init = [s[4] for s in samples]
        results[name] = {
            "binary": binary, "event": os.path.basename(event_file), "runs": runs,
            "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
            "init_median_ms": statistics.median(init),
            "peak_rss_kib": max(s[1] or 0 for s in samples),
            "answer": samples[0][2], "status": samples[0][3],
        }
        r = results[name]
        print(f"  {name:<18} init {r['init_median_ms']:6.2f} ms  first response median {r['median_ms']:7.2f} ms  (min {r['min_ms']:.2f}, max {r['max_ms']:.2f})"
              f"  peak {r['peak_rss_kib'] / 1024:5.1f} MiB  {r['answer']} {r['status']}", file=sys.stderr)
    json.dump(results, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
