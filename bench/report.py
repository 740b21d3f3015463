"""Writes BENCHMARKS.md from one run of scripts/bench: the cold starts (coldstart.json), criterion's
estimates, the DynamoDB calls and capacity units of the pinned tests (dynamodb.jsonl), the load run
(load.json), binary and package sizes, and the cost per 1,000,000 sessions computed from them.

usage: report.py RUN_DIR RELEASE_DIR CRITERION_DIR OUT FUNCTION...
"""
import datetime, io, json, os, platform, subprocess, sys, zipfile

RUN, REL, CRIT, OUT = sys.argv[1:5]
FUNCTIONS = sys.argv[5:]

# List prices, us-east-1, as published on AWS's pricing pages (DynamoDB on-demand after its
# 2024-11-01 reduction). PRICES_DATE: the date these figures are stated for; they were written from
# AWS's published list prices, not fetched (this machine reaches no pricing API): check them there.
PRICES_DATE = "2026-11-22"
PRICE = {
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_per_1m_requests": 0.20,
    "http_api_per_1m_requests": 1.00,
    "ddb_per_1m_wru": 0.625,
    "ddb_per_1m_rru": 0.125,
    "secrets_per_10k_calls": 0.05,
}
MEMORY_MB = 256  # template.yaml FunctionMemorySize default
COLD_SHARE = 0.01  # assumed share of invocations that start a container
READ_OPS = {"GetItem", "Query", "BatchGetItem", "Scan", "TransactGetItems"}
# Where the guarantees of docs/api.md need more calls than the targets, BENCHMARKS.md
# (bench/NOTES.md) says why.
TARGETS = {"token issue": 2, "session start": 2, "status read fresh": 1, "status read stale": 2,
           "webhook new": 3, "webhook duplicate": 1}


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({cpu}), {mem / 1048576:.0f} GiB RAM, {platform.system()} {platform.release()}, {sh('rustc', '--version')}"


def crit(group, name, param=None):
    parts = [CRIT, group, name] + ([param] if param else []) + ["new", "estimates.json"]
    try:
        return json.load(open(os.path.join(*parts)))["median"]["point_estimate"]
    except OSError:
        return None


def fmt_ns(ns):
    if ns is None:
        return "n/a"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main():
    cold = json.load(open(os.path.join(RUN, "coldstart.json")))
    load = json.load(open(os.path.join(RUN, "load.json")))
    ddb = [json.loads(l) for l in open(os.path.join(RUN, "dynamodb.jsonl"))]
    ddb.sort(key=lambda r: r["operation"])
    by_op = {r["operation"]: r for r in ddb}
    tree = open(os.path.join(RUN, "tree-d.txt")).read().split()
    commit = sh("git", "rev-parse", "--short", "HEAD")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    o = io.StringIO()
    w = lambda s="": o.write(s + "\n")

    w("# Benchmarks")
    w()
    w(f"Measured {now} at commit `{commit}` on {machine()}, with DynamoDB Local and moto on loopback.")
    w("Every table below comes from this one run of `scripts/bench` (reproduce: `scripts/bench`; settings in its header).")
    w("Benchmarks are not tests: only the DynamoDB counts of section 3 are pinned, by `tests/integration/dynamodb_costs.rs`.")
    w()

    # 1. Cold start
    hello, minimal = cold["bench-hello"]["median_ms"], cold["bench-minimal-aws"]["median_ms"]
    w("## 1. Cold start (spawn to first response posted)")
    w()
    w(f"Each release binary is spawned {cold['bench-hello']['runs']} times against our Lambda Runtime API emulator "
      "(`bench/coldstart.py`) with a template.yaml environment; the first `next` hands it one `events/` sample. "
      "Baselines built with the same profile: `bench-hello` (an empty `lambda_http` function) and `bench-minimal-aws` "
      "(SDK config, DynamoDB and Secrets Manager clients, one secret read at init, one GetItem per request). "
      "Init is spawn to the first `next` (clients built, nothing sent yet); first response includes the "
      "invocation's own work: the secret read and each DynamoDB call of the operation (section 3) on DynamoDB Local, "
      "which the minimal-AWS baseline (one GetItem) does not have. "
      "Peak memory is the process's VmHWM right after its first response.")
    w()
    hello_init, minimal_init = cold["bench-hello"]["init_median_ms"], cold["bench-minimal-aws"]["init_median_ms"]
    w("| binary | event | answer | init ms | first response ms (median) | min–max ms | peak MiB | × hello | × minimal-AWS | init × minimal-AWS |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ["bench-hello", "bench-minimal-aws"] + FUNCTIONS:
        r = cold[name]
        w(f"| {name} | `{r['event']}` | {r['answer']} {r['status'] or '(not HTTP)'} | {r['init_median_ms']:.1f} | {r['median_ms']:.1f} | "
          f"{r['min_ms']:.1f}–{r['max_ms']:.1f} | {r['peak_rss_kib'] / 1024:.1f} | {r['median_ms'] / hello:.2f} | "
          f"{r['median_ms'] / minimal:.2f} | {r['init_median_ms'] / minimal_init:.2f} |")
    w()

    # 2. Warm cost
    w("## 2. Warm cost in-process (criterion, median)")
    w()
    w("Webhook authenticity check + parse beside its cryptographic floor on the same bytes "
      "(`bench/benches/warm.rs`). Authento: hex HMAC-SHA256 digest of the raw body, then JSON; floor: "
      "HMAC-SHA256 (the digest is hex in a header: no body encoding). Passbase: base64, AES-256-CBC, PKCS#7, then JSON; "
      "floor: AES-256-CBC decryption of the decoded bytes; with the wire encoding: base64 decoding, then that decryption.")
    w()
    w("| webhook | body | check + parse | floor | ratio | floor with the wire encoding | ratio |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for hook, floor, wire in [("authento_check_parse", "floor_hmac_sha256", None),
                              ("passbase_check_parse", "floor_aes256cbc", "floor_base64_aes256cbc")]:
        for size in ["1KiB", "16KiB"]:
            a, f = crit("webhook", hook, size), crit("webhook", floor, size)
            ratio = f"{a / f:.2f}" if a and f else "n/a"
            wf = crit("webhook", wire, size) if wire else f
            wratio = f"{a / wf:.2f}" if a and wf else "n/a"
            w(f"| {hook.split('_')[0]} | {size} | {fmt_ns(a)} | {fmt_ns(f)} | {ratio} | {fmt_ns(wf)} | {wratio} |")
    w()
    w("Full handler (`idv::http::handle`) on the in-memory store, simulators behind it:")
    w()
    w("| handler call | median |")
    w("|---|---:|")
    token_ns = crit("handler_memory_store", "issue_token_new_user")
    read_ns = crit("handler_memory_store", "get_session_stored")
    w(f"| `POST /v1/tokens` (new user: token signed, session stored) | {fmt_ns(token_ns)} |")
    w(f"| `GET /v1/sessions/{{id}}?refresh=false` | {fmt_ns(read_ns)} |")
    w()

    # 3. DynamoDB
    w("## 3. DynamoDB calls and capacity units per operation")
    w()
    w("Counted on the wire by SDK interceptors (`tests/support/lib.rs` `DynamoCalls`, `tests/support/capacity.rs`), "
      "capacity units as DynamoDB Local reports them with `ReturnConsumedCapacity: INDEXES` (the total, each index's "
      "share beside it; a transaction's units include its items' index writes). A write refused by its condition (a duplicate delivery) reports no units; AWS "
      "bills it at least 1 WRU, counted so below. An empty Query reports 0 here; AWS bills at least 0.5 RRU. "
      "DynamoDB Local's transaction figures are not AWS's rule (2 WRU per KB of each item): it reports a one-item "
      "transaction of under 1 KB as 4 units and a two-item one as 4 in all, so the transaction rows (session creation, "
      "a Prove identity event) are read here as an upper bound.")
    w()
    w("| operation | calls | total | target | RRU | WRU |")
    w("|---|---|---:|---:|---:|---:|")
    for r in ddb:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items()))
        total = sum(r["calls"].values())
        target = next((str(v) for k, v in TARGETS.items() if r["operation"].startswith(k)), "")
        rru, wru = units(r)
        w(f"| {r['operation']} | {calls} | {total} | {target} | {rru:g} | {wru:g} |")
    w()

    # 4. Load
    w("## 4. Load: the local server on DynamoDB Local, wrk, "
      f"{load['connections']} connections, {load['seconds']} s per route")
    w()
    w(f"{load['sessions']} verified Prove sessions, each with its own enrolled identity. `status`: `GET /v1/sessions/{{id}}` "
      "over all of them; `webhook`: `POST /v1/webhooks/prove`, each body a distinct event (once every event was delivered, "
      "wrk's cycle redelivers them: duplicates); `mixed`: the two alternating; `healthz`: the trivial route of the same server.")
    w()
    w("| route | req/s | p50 ms | p99 ms | max ms | 5xx | 4xx | socket errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ["healthz", "status", "webhook", "mixed"]:
        r = load[name]
        w(f"| {name} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {r['max_us'] / 1000:.1f} | "
          f"{r['n5xx']} | {r['n4xx']} | {r['socket_errors']} |")
    c = load["check"]
    w()
    w(f"Lost-update check after the runs: {c['events']} distinct events reached the gateway, {c['stored']} stored "
      f"({c['retried_after_run']} of them settled after the runs by the gateway's own retry in reconcile: deferred "
      f"under contention or cut off when wrk stopped; {c['unsettled']} still unsettled after 120 s); sessions whose "
      f"stored events or version growth differ from what was sent: **{c['sessions_wrong']}**.")
    if read_ns:
        share = read_ns / (load["status"]["p50_us"] * 1000) * 100
        w()
        w(f"Where the time goes: the gateway's own work for a status read is {fmt_ns(read_ns)} in-process "
          f"(section 2), {share:.3f}% of the {load['status']['p50_us'] / 1000:.2f} ms p50 under load; the rest is "
          "DynamoDB Local (a Java process on the same cores: one GetItem and one Query per read) and queueing of "
          "200 connections on this machine's cores, shared by wrk, the server and DynamoDB Local. "
          "The webhook route adds the conditional writes (section 3). No simulator is on these paths.")
    w()

    # 5. Sizes
    w("## 5. Binary and deployment package sizes")
    w()
    w("Release profile (`Cargo.toml`: fat LTO, one codegen unit, symbols stripped, `panic = \"abort\"`); the package is "
      "the zip of the binary named `bootstrap`, as `rust-cargolambda` deploys it (x86_64 here; the arm64 build is "
      "of the same order).")
    w()
    w("| binary | bytes | MiB | zip bytes | zip MiB |")
    w("|---|---:|---:|---:|---:|")
    sizes = {}
    for name in FUNCTIONS + ["bench-hello", "bench-minimal-aws"]:
        path = os.path.join(REL, name)
        raw = os.path.getsize(path)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(path, "bootstrap")
        sizes[name] = (raw, len(buf.getvalue()))
        w(f"| {name} | {raw} | {raw / 1048576:.2f} | {len(buf.getvalue())} | {len(buf.getvalue()) / 1048576:.2f} |")
    w()

    # 6. Cost
    w("## 6. Cost per 1,000,000 verification sessions on AWS")
    w()
    w(f"List prices, us-east-1, as stated on {PRICES_DATE} from AWS's published pricing pages (not fetched by the "
      f"script: check them before relying on the totals): Lambda arm64 ${PRICE['lambda_gb_s_arm64']} per GB-s and "
      f"${PRICE['lambda_per_1m_requests']:.2f} per 1M requests; API Gateway HTTP API ${PRICE['http_api_per_1m_requests']:.2f} "
      f"per 1M requests; DynamoDB on-demand ${PRICE['ddb_per_1m_wru']} per 1M WRU and ${PRICE['ddb_per_1m_rru']} per 1M RRU; "
      f"Secrets Manager ${PRICE['secrets_per_10k_calls']} per 10,000 calls. A typical session: one start, three status "
      "reads (one fresh, two stale), three webhooks. DynamoDB units are the measured ones of section 3; Lambda duration is "
      f"each function's own work for one request as section 1 measured it (first response less init: an upper bound, "
      f"it includes opening connections a warm container keeps) at {MEMORY_MB} MB, plus "
      f"{COLD_SHARE:.0%} of invocations paying their measured cold start and one secret read. Storage, logs and data "
      "transfer are left out.")
    w()
    # One invocation's own work, as section 1 measured it for a single request: first response less
    # init (it includes opening the connections a warm container already has: an upper bound).
    work = {f: cold[f]["median_ms"] - cold[f]["init_median_ms"] for f in FUNCTIONS}
    webhook_fn = {f[len("webhook-"):].capitalize(): f for f in FUNCTIONS if f.startswith("webhook-")}
    cold_ms = sum(cold[f]["median_ms"] for f in FUNCTIONS) / len(FUNCTIONS)
    w("| provider | API + Lambda requests | Lambda duration | DynamoDB reads | DynamoDB writes | Secrets Manager | total per 1M sessions |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    worst = 0
    for provider, steps in session_mix(by_op).items():
        rru = wru = 0.0
        for op, n in steps:
            r_, w_ = units(by_op[op])
            if op.startswith("reconcile"):
                # Per due session: its read (BatchGetItem) and its write. The 16 index Queries
                # are per run (once a minute, whatever is due), shared by every session of the
                # run: about 0 per session.
                r_ = by_op[op]["capacity_units"].get("BatchGetItem", 0.0) / 3
                w_ = w_ / 3
            rru, wru = rru + n * r_, wru + n * w_
        invocations = 7
        req = invocations * (PRICE["http_api_per_1m_requests"] + PRICE["lambda_per_1m_requests"])
        start_fn = "issue-token" if provider == "Authento" else "start-session"
        third = webhook_fn.get(provider, "reconcile")
        ms = (work[start_fn] + 3 * work["get-session"] + 3 * work[third] / (1 if third != "reconcile" else 3)
              + invocations * COLD_SHARE * cold_ms)
        dur = ms / 1000 * MEMORY_MB / 1024 * PRICE["lambda_gb_s_arm64"] * 1e6
        reads = rru * PRICE["ddb_per_1m_rru"]
        writes = wru * PRICE["ddb_per_1m_wru"]
        secrets = invocations * COLD_SHARE * PRICE["secrets_per_10k_calls"] * 100
        total = req + dur + reads + writes + secrets
        worst = max(worst, total)
        w(f"| {provider} | ${req:.2f} | ${dur:.2f} | ${reads:.2f} ({rru:g} RRU) | ${writes:.2f} ({wru:g} WRU) | "
          f"${secrets:.2f} | **${total:.2f}** |")
    w()
    w(f"Session mix per provider: {mix_text(session_mix(by_op))}.")
    w()

    # Lean build
    w("## Lean build")
    w()
    w("`cargo tree -d -e normal` over the functions and the shared library (duplicated crates; the binaries carry one "
      "TLS stack, rustls, and one crypto provider, aws-lc-rs: no ring, no OpenSSL, no native-tls):")
    w()
    w("```")
    w(" ".join(tree) if tree else "(none)")
    w("```")
    w()
    open(OUT, "w").write(o.getvalue() + NOTES)


def units(r):
    rru = wru = 0.0
    for op, n in r["calls"].items():
        cu = r["capacity_units"].get(op, 0.0)
        if op in READ_OPS:
            rru += max(cu, 0.5 * n) if op == "Query" else cu
        else:
            wru += cu
    return rru, wru + r.get("refused", 0)


def session_mix(by_op):
    return {
        "Authento": [("token issue", 1), ("status read fresh", 1), ("status read stale, authento", 2),
                     ("webhook new, authento", 3)],
        "Prove": [("session start, prove mobile", 1), ("status read, prove (identity events shown)", 3),
                  ("webhook new, prove", 3)],
        "Nevis (no webhooks: three reconcile refreshes instead)": [
            ("session start, nevis", 1), ("status read fresh", 1), ("status read stale, nevis (status moved)", 2),
            ("reconcile, 3 due sessions", 3)],
        "Passbase": [("session start, passbase", 1), ("status read fresh", 1), ("status read stale, authento", 2),
                     ("webhook new, passbase", 3)],
    }


def mix_text(mix):
    def step(op, n):
        return f"{n}× reconcile refresh (a due session's write)" if op.startswith("reconcile") else f"{n}× {op}"
    return "; ".join(f"{p}: " + ", ".join(step(op, n) for op, n in steps) for p, steps in mix.items())


NOTES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NOTES.md")
NOTES = open(NOTES_FILE).read() if os.path.exists(NOTES_FILE) else ""

if __name__ == "__main__":
    main()
