"""Deploy rehearsal (run by scripts/deploy-rehearsal, which starts a private moto on loopback).

Transforms template.yaml with the SAM translator (the same library `sam deploy` hands the template to,
pinned with aws-sam-cli), creates the stack in moto's CloudFormation, and checks each resource moto
can create against what the template says. Lists the resource types moto cannot create; those are
checked by cfn-lint, `sam validate --lint` and checkov only.

Nothing here may reach AWS: every client is built for the loopback endpoint, and the wrapper sets
AWS_ENDPOINT_URL and a dead proxy for everything else; `assert_loopback` checks each client.

    python scripts/deploy-rehearsal.py transform [Key=Value ...]   # print the transformed template
    python scripts/deploy-rehearsal.py rehearse [Key=Value ...]    # needs AWS_ENDPOINT_URL (moto)
"""

import ast
import io
import json
import os
import sys
import time
import urllib.parse
import zipfile

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REGION = "us-east-1"
BUCKET = "idv-rehearsal-artifacts"
STACK = "idv-rehearsal"


def load_template():
    with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as f:
        return yaml_parse(f.read())


def functions_of(sam):
    return {
        name: r
        for name, r in sam["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def transform(sam, parameters, code_key="bootstrap.zip"):
    """The CloudFormation template `sam deploy` would create, for these parameter values. Local
    CodeUri (".") become the S3 object the rehearsal uploaded, as `sam package` would."""
    for r in functions_of(sam).values():
        r["Properties"]["CodeUri"] = f"s3://{BUCKET}/{code_key}"

    def no_managed_policy_lookup():
        # The template names managed policies by ARN only; a name would need IAM (i.e. AWS).
        raise AssertionError("the SAM translator asked IAM for managed policies")

    session = boto3.session.Session(region_name=REGION)  # the Region only; no call is made
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[], boto_session=session)
    return translator.translate(
        sam_template=sam,
        parameter_values=dict(parameters),
        get_managed_policy_map=no_managed_policy_lookup,
    )


def assert_loopback(client):
    host = urllib.parse.urlparse(client.meta.endpoint_url).hostname
    assert host in ("127.0.0.1", "localhost"), f"{client.meta.service_model.service_name} -> {host}"
    return client


def client(service):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return assert_loopback(boto3.client(service, region_name=REGION, endpoint_url=endpoint))


def bootstrap_zip():
    """A stand-in artifact: moto stores the code, never runs it here."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho rehearsal\n")
    return buf.getvalue()


class Checks:
    def __init__(self):
        self.failures = []
        self.count = 0

    def eq(self, what, got, want):
        self.count += 1
        if got != want:
            self.failures.append(f"{what}: got {got!r}, want {want!r}")

    def true(self, what, ok):
        self.count += 1
        if not ok:
            self.failures.append(what)


def create_stack(cf, name, template, params):
    cf.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    for _ in range(600):
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cf.describe_stack_events(StackName=name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if "FAILED" in e["ResourceStatus"]]
        raise SystemExit(f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')} {reasons}")
    return stack


def moto_cfn_types():
    """The resource types moto's CloudFormation creates (the others it skips with a warning)."""
    import importlib
    import pkgutil

    import moto
    from moto.cloudformation.parsing import get_model_map

    for m in pkgutil.iter_modules(moto.__path__):
        try:  # every service's models, so that each registers its CloudFormation types
            importlib.import_module(f"moto.{m.name}.models")
        except Exception:  # noqa: BLE001 (a service without models, or an optional dependency)
            pass
    return set(get_model_map())


def rehearse_stack(name, params, checks, c, moto_types):
    """Creates one stack and checks what moto created. Returns (created, not creatable) types."""
    sam = load_template()
    template = transform(load_template(), params)  # the translator changes what it is given
    t0 = time.monotonic()
    create_stack(c["cloudformation"], name, template, params)
    took = time.monotonic() - t0
    listed = c["cloudformation"].list_stack_resources(StackName=name)["StackResourceSummaries"]
    phys = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}
    res = template["Resources"]
    conditions = active_conditions(template, params)
    wanted = {k: r for k, r in res.items() if r.get("Condition") in (None, *conditions)}
    created, cannot = {}, {}
    for logical, r in sorted(wanted.items()):
        bucket = created if r["Type"] in moto_types else cannot
        bucket.setdefault(r["Type"], []).append(logical)
    for kind, names in created.items():
        for n in names:
            checks.true(f"{name}: {n} ({kind}) created", n in phys)
    for n in filter(None, phys):  # moto lists the stack itself without a logical id
        checks.true(f"{name}: {n} created but not wanted (conditions: {sorted(conditions)})", n in wanted)
    resolved = Resolver(template, params, conditions, phys)
    check_resources(name, params, sam, template, phys, checks, c, resolved)
    return created, cannot, took


NO_VALUE = object()


class Resolver:
    """The transformed template's properties as CloudFormation would resolve them for these
    parameters: for what moto accepts but does not keep (MOTO_DROPS), the rehearsal checks the
    value CloudFormation is given."""

    def __init__(self, template, params, conditions, phys):
        self.res = template["Resources"]
        self.p = {k: v.get("Default", "") for k, v in template.get("Parameters", {}).items()}
        self.p.update(params)
        self.conditions, self.phys = conditions, phys

    def value(self, v):
        if isinstance(v, dict) and len(v) == 1:
            (k, a), = v.items()
            if k == "Fn::If":
                return self.value(a[1] if a[0] in self.conditions else a[2])
            if k == "Ref":
                if a == "AWS::NoValue":
                    return NO_VALUE
                return self.p.get(a, self.phys.get(a, v))
            if k == "Fn::GetAtt":
                return {"GetAtt": a}
        if isinstance(v, dict):
            out = {k: self.value(x) for k, x in v.items()}
            return {k: x for k, x in out.items() if x is not NO_VALUE}
        if isinstance(v, list):
            return [x for x in (self.value(x) for x in v) if x is not NO_VALUE]
        return v

    def props(self, logical):
        return self.value(self.res[logical].get("Properties", {}))


# Each function's reserved concurrency parameter (one per function, or per kind).
RESERVED = {
    "IssueTokenFunction": "AppReservedConcurrency",
    "StartSessionFunction": "AppReservedConcurrency",
    "GetSessionFunction": "AppReservedConcurrency",
    "WebhookAuthentoFunction": "WebhookReservedConcurrency",
    "WebhookProveFunction": "WebhookReservedConcurrency",
    "WebhookPassbaseFunction": "WebhookReservedConcurrency",
    "WebhookStripeFunction": "WebhookReservedConcurrency",
    "ReconcileFunction": "ReconcileReservedConcurrency",
    "EventsApiFunction": "EventsApiReservedConcurrency",
    "NotifyFunction": "NotifyReservedConcurrency",
}


# What moto 5.2.5's CloudFormation accepts but does not keep (checked on the template instead).
MOTO_DROPS = [
    "AWS::Lambda::Function: Architectures, TracingConfig, LoggingConfig, KmsKeyArn",
    "AWS::IAM::Role: ManagedPolicyArns",
    "AWS::DynamoDB::Table: SSESpecification, TimeToLiveSpecification, PointInTimeRecoverySpecification",
    "AWS::Logs::LogGroup: KmsKeyId",
]


def active_conditions(template, params):
    """The template's conditions that hold for these parameters (the few forms the template uses)."""
    p = {k: v.get("Default", "") for k, v in template.get("Parameters", {}).items()}
    p.update(params)
    conds = template.get("Conditions", {})

    def value(v):
        if isinstance(v, dict) and "Ref" in v:
            return p[v["Ref"]]
        if isinstance(v, dict) and "Fn::Join" in v:
            sep, parts = v["Fn::Join"]
            parts = value(parts)
            return sep.join(parts if isinstance(parts, list) else [x for x in str(parts).split(",")])
        return str(v)

    def holds(c):
        if "Fn::Equals" in c:
            a, b = c["Fn::Equals"]
            return str(value(a)) == str(value(b))
        if "Fn::Not" in c:
            return not holds(c["Fn::Not"][0])
        if "Condition" in c:
            return holds(conds[c["Condition"]])
        raise AssertionError(f"condition form not handled: {c}")

    return {name for name, c in conds.items() if holds(c)}


def policy_doc(doc):
    """A policy document as moto returns it: a dict, or its (URL-encoded) JSON text."""
    if isinstance(doc, str):
        text = urllib.parse.unquote(doc)
        try:
            return json.loads(text)
        except ValueError:  # moto keeps what CloudFormation handed it: a Python repr
            return ast.literal_eval(text)
    return doc


PROVIDERS = ["authento", "prove", "nevis", "passbase", "stripe"]


def inline_docs(iam, role_name):
    return [policy_doc(iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]) for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]


def check_resources(name, params, sam, template, phys, checks, c, resolved):
    ddb, lam, iam, logs = c["dynamodb"], c["lambda"], c["iam"], c["logs"]
    secret_arn = params["ExistingSecretArn"]
    split = params.get("SecretLayout", "split") == "split"
    cmk = params.get("KmsKey", "")
    key_arn = None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in c["cloudformation"].describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}
    if "Key" in phys:
        # moto 5.2.5 keeps a key policy from CloudFormation as a dict and fails every call that
        # checks it (DescribeKey, GetKeyRotationStatus): the key is known by the stack's output and
        # by listing; its rotation is checkov's CKV_AWS_7.
        key_arn = outputs.get("KmsKeyArn")
        listed = {k["KeyArn"] for k in c["kms"].list_keys()["Keys"]}
        checks.true(f"{name}: Key {key_arn} exists", key_arn in listed and phys["Key"] in key_arn)
    elif cmk.startswith("arn:"):
        key_arn = cmk

    # The table: keys, indexes (gsi1 and gsi2 keys only; gsi3, the tenant listing's, the session's
    # tenant and gsi1sk with status and provider), billing, TTL, recovery, encryption, deletion
    # protection.
    table = ddb.describe_table(TableName=phys["Table"])["Table"]
    checks.eq(f"{name}: table keys", [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]], [("pk", "HASH"), ("sk", "RANGE")])
    gsis = {
        g["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]],
            g["Projection"]["ProjectionType"],
            sorted(g["Projection"].get("NonKeyAttributes", [])),
        )
        for g in table["GlobalSecondaryIndexes"]
    }
    want_gsis = {i: ([(f"{i}pk", "HASH"), (f"{i}sk", "RANGE")], "KEYS_ONLY", []) for i in ("gsi1", "gsi2")}
    want_gsis["gsi3"] = ([("tenant", "HASH"), ("gsi1sk", "RANGE")], "INCLUDE", ["provider", "status"])
    checks.eq(f"{name}: table indexes", gsis, want_gsis)
    checks.eq(f"{name}: table billing", table.get("BillingModeSummary", {}).get("BillingMode"), "PAY_PER_REQUEST")
    checks.eq(f"{name}: table stream", table.get("StreamSpecification", {}).get("StreamEnabled", False), "StreamSpecification" in sam["Resources"]["Table"]["Properties"])
    checks.eq(f"{name}: table deletion protection", str(table.get("DeletionProtectionEnabled")).lower(), params.get("TableDeletionProtection", "true"))
    tp = resolved.props("Table")
    checks.eq(f"{name}: table TTL (template)", tp["TimeToLiveSpecification"], {"AttributeName": "ttl", "Enabled": True})
    checks.eq(f"{name}: table point-in-time recovery (template)", tp["PointInTimeRecoverySpecification"], {"PointInTimeRecoveryEnabled": True})
    want_sse = {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"GetAtt": ["Key", "Arn"]}} if "Key" in phys else {"SSEEnabled": True}
    checks.eq(f"{name}: table encryption (template)", tp["SSESpecification"], want_sse)

    # The functions: runtime, architecture, environment, tracing, logs, role and its policies.
    fns = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    for logical, r in fns.items():
        binary = sam["Resources"][logical]["Metadata"]["BuildProperties"]["Binary"]
        f = lam.get_function(FunctionName=phys[logical])["Configuration"]
        fp = resolved.props(logical)
        checks.eq(f"{name}: {logical} runtime", (f["Runtime"], f["Handler"]), ("provided.al2023", "bootstrap"))
        checks.eq(f"{name}: {logical} architecture (template)", fp.get("Architectures"), ["arm64"])
        env = f.get("Environment", {}).get("Variables", {})
        checks.eq(f"{name}: {logical} IDV_TABLE_NAME", env.get("IDV_TABLE_NAME"), phys["Table"])
        checks.eq(f"{name}: {logical} IDV_METRICS_NAMESPACE", env.get("IDV_METRICS_NAMESPACE"), f"idv-gateway/{name}")
        checks.eq(f"{name}: {logical} IDV_SECRET_ID", env.get("IDV_SECRET_ID"), secret_arn)
        # Every variable of the template with the stack's conditions applied; those naming a
        # secret moto cannot create (a provider's own) moto drops: checked on the template.
        want_vars = fp.get("Environment", {}).get("Variables", {})
        uncreated = {k: v for k, v in want_vars.items() if isinstance(v, dict) and v.get("Ref") not in (None, *phys)}
        checks.eq(f"{name}: {logical} environment names", set(want_vars) - set(uncreated) - set(env), set())
        provider_vars = {f"IDV_{p.upper()}_SECRET_ID": {"Ref": f"{p.capitalize()}Secret"} for p in PROVIDERS}
        if split:
            checks.eq(f"{name}: {logical} providers' secrets (template)", {k: want_vars.get(k) for k in provider_vars}, provider_vars)
        else:
            checks.eq(f"{name}: {logical} providers' secrets unset", sorted(set(provider_vars) & (set(env) | set(want_vars))), [])
        # What it may read: in one secret, that one; split, the gateway's (whose ARN moto knows)
        # and providers' own (which moto cannot create: on the template). The exact set per
        # function is tests/integration/iam.rs's; here the shape, and what no layout may do.
        reads = [s for p in resolved.props(f"{logical}Role").get("Policies", []) for s in p["PolicyDocument"]["Statement"] if s.get("Action") == "secretsmanager:GetSecretValue"]
        (grant,) = [s["Resource"] for s in reads] or [None]
        grant = grant if isinstance(grant, list) else [grant]
        own = {p["Ref"] for p in grant if isinstance(p, dict)}
        checks.true(f"{name}: {logical} reads only the stack's secrets ({grant})", all(g == secret_arn for g in grant if not isinstance(g, dict)) and own <= {f"{p.capitalize()}Secret" for p in PROVIDERS})
        if not split:
            checks.eq(f"{name}: {logical} reads the one secret", grant, [secret_arn])
        elif binary.startswith("webhook-"):
            checks.eq(f"{name}: {logical} reads its provider's secret only", grant, [{"Ref": f"{binary[8:].capitalize()}Secret"}])
        elif binary in ("events-api", "notify"):
            checks.eq(f"{name}: {logical} reads the gateway's secret only", grant, [secret_arn])
        moto_grant = [s.get("Resource") for doc in inline_docs(iam, phys[f"{logical}Role"]) for s in doc["Statement"] if s.get("Action") == "secretsmanager:GetSecretValue"]
        kept = [g for g in (moto_grant[0] if moto_grant and isinstance(moto_grant[0], list) else moto_grant) if g]
        checks.eq(f"{name}: {logical} secret grant in moto (its own secrets dropped)", kept, [g for g in grant if not isinstance(g, dict)])
        checks.eq(f"{name}: {logical} tracing (template)", fp.get("TracingConfig"), {"Mode": "Active"})
        checks.eq(f"{name}: {logical} log group (template)", fp.get("LoggingConfig", {}).get("LogGroup"), f"/aws/lambda/{name}/{binary}")
        checks.eq(f"{name}: {logical} env key (template)", fp.get("KmsKeyArn"), {"GetAtt": ["Key", "Arn"]} if "Key" in phys else None)
        subnets = [s for s in params.get("VpcSubnetIds", "").split(",") if s]
        checks.eq(f"{name}: {logical} subnets", sorted(f.get("VpcConfig", {}).get("SubnetIds", [])), sorted(subnets))
        role_name = f["Role"].rsplit("/", 1)[-1]
        role = iam.get_role(RoleName=role_name)["Role"]
        checks.eq(f"{name}: {logical} role", role_name, phys[f"{logical}Role"])
        boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        checks.eq(f"{name}: {logical} boundary", boundary, phys.get("NoVpcBoundary"))
        managed = [str(m).rsplit("/", 1)[-1] for m in resolved.props(f"{logical}Role").get("ManagedPolicyArns", [])]
        want_managed = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaVPCAccessExecutionRole"]
        events = sam["Resources"][logical]["Properties"].get("Events", {}).values()
        if any(e["Type"] == "DynamoDB" for e in events):  # SAM's read rights on the stream
            want_managed.append("AWSLambdaDynamoDBExecutionRole")
        if "KmsUsePolicy" in phys:
            want_managed.append(phys["KmsUsePolicy"].rsplit("/", 1)[-1])
        checks.eq(f"{name}: {logical} managed policies (template)", sorted(managed), sorted(want_managed))
        inline = [policy_doc(iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]) for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]]
        table_arn = table["TableArn"]
        resources = {str(s.get("Resource")) for doc in inline for s in doc["Statement"] if any(str(a).startswith("dynamodb:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))}
        checks.true(f"{name}: {logical} DynamoDB grants on the table only ({resources})", bool(resources) and all(r.startswith(table_arn) for r in resources))
        want_reserved = params.get(RESERVED[logical], "0")
        got = lam.get_function_concurrency(FunctionName=phys[logical]).get("ReservedConcurrentExecutions")
        checks.eq(f"{name}: {logical} reserved concurrency", str(got) if got is not None else "0", want_reserved)

    # The dead-letter queues: retention, encryption.
    queues = {}
    for logical in (n for n, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"):
        qa = c["sqs"].get_queue_attributes(QueueUrl=phys[logical], AttributeNames=["All"])["Attributes"]
        queues[logical] = qa["QueueArn"]
        checks.eq(f"{name}: {logical} retention", qa["MessageRetentionPeriod"], "1209600")
        if key_arn:
            checks.eq(f"{name}: {logical} key", qa.get("KmsMasterKeyId"), key_arn)
        else:
            checks.eq(f"{name}: {logical} encryption", qa.get("SqsManagedSseEnabled"), "true")
    checks.eq(f"{name}: dead-letter queues", sorted(queues), ["NotifyDeadLetterQueue", "ReconcileDeadLetterQueue"])

    # The schedules: every minute, to their function, with its dead-letter queue and no retry.
    for fn, queue in (("ReconcileFunction", "ReconcileDeadLetterQueue"), ("NotifyFunction", "NotifyDeadLetterQueue")):
        rule_name = phys[f"{fn}EveryMinute"]
        rule = c["events"].describe_rule(Name=rule_name)
        checks.eq(f"{name}: {fn} schedule", (rule["ScheduleExpression"], rule["State"]), ("rate(1 minute)", "ENABLED"))
        (target,) = c["events"].list_targets_by_rule(Rule=rule_name)["Targets"]
        fn_arn = lam.get_function(FunctionName=phys[fn])["Configuration"]["FunctionArn"]
        checks.eq(f"{name}: {fn} schedule target", target["Arn"], fn_arn)
        checks.eq(f"{name}: {fn} schedule dead letters", target.get("DeadLetterConfig", {}).get("Arn"), queues[queue])
        checks.eq(f"{name}: {fn} schedule retries", target.get("RetryPolicy", {}).get("MaximumRetryAttempts"), 0)
        # The on-failure destination (EventInvokeConfig, which moto cannot create): on the template.
        dest = resolved.props(f"{fn}EventInvokeConfig").get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        checks.eq(f"{name}: {fn} on-failure destination (template)", dest, {"GetAtt": [queue, "Arn"]})

    # The table's stream into notify: the event source mapping, its batch, retries, filters, and
    # the dead-letter queue for batches that fail every retry (and the role's right to send there).
    (esm,) = lam.list_event_source_mappings(FunctionName=phys["NotifyFunction"])["EventSourceMappings"]
    want = sam["Resources"]["NotifyFunction"]["Properties"]["Events"]["TableStream"]["Properties"]
    checks.eq(f"{name}: stream source", esm["EventSourceArn"], table.get("LatestStreamArn"))
    checks.eq(f"{name}: stream state", esm.get("State"), "Enabled")
    for key in ("StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts", "FunctionResponseTypes", "FilterCriteria"):
        checks.eq(f"{name}: stream {key}", esm.get(key), want[key])
    checks.eq(f"{name}: stream failures", esm.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"), queues["NotifyDeadLetterQueue"])
    notify_role = phys["NotifyFunctionRole"]
    sends = [s for p in iam.list_role_policies(RoleName=notify_role)["PolicyNames"]
             for s in policy_doc(iam.get_role_policy(RoleName=notify_role, PolicyName=p)["PolicyDocument"])["Statement"]
             if s.get("Action") == "sqs:SendMessage"]
    checks.eq(f"{name}: notify may send failed batches to its queue", [s.get("Resource") for s in sends], [queues["NotifyDeadLetterQueue"]])

    # Log groups: one per function and the access logs, with retention (and the key).
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix=f"/aws/")["logGroups"] if f"/{name}/" in g["logGroupName"]}
    want_groups = {f"/aws/lambda/{name}/{sam['Resources'][n]['Metadata']['BuildProperties']['Binary']}" for n in fns} | {f"/aws/apigateway/{name}/access"}
    checks.eq(f"{name}: log groups", set(groups), want_groups)
    for g in groups.values():
        checks.eq(f"{name}: {g['logGroupName']} retention", g.get("retentionInDays"), int(params.get("LogRetentionDays", 30)))
    for logical in (n for n, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"):
        checks.eq(f"{name}: {logical} key (template)", resolved.props(logical).get("KmsKeyId"), {"GetAtt": ["Key", "Arn"]} if "Key" in phys else None)

    # The alarm topic and the dashboard.
    topic = c["sns"].get_topic_attributes(TopicArn=phys["AlarmTopic"])["Attributes"]
    checks.eq(f"{name}: alarm topic key", topic.get("KmsMasterKeyId"), key_arn)
    body = json.loads(c["cloudwatch"].get_dashboard(DashboardName=phys["Dashboard"])["DashboardBody"])
    checks.true(f"{name}: dashboard widgets", len(body["widgets"]) >= 10)
    checks.true(f"{name}: dashboard reads the stack's namespace", f"idv-gateway/{name}" in json.dumps(body))


def rehearse(params):
    services = ["cloudformation", "s3", "dynamodb", "lambda", "iam", "logs", "events", "sqs", "sns", "cloudwatch", "kms", "secretsmanager", "ec2"]
    c = {s: client(s) for s in services}
    c["s3"].create_bucket(Bucket=BUCKET)
    c["s3"].put_object(Bucket=BUCKET, Key="bootstrap.zip", Body=bootstrap_zip())
    moto_types = moto_cfn_types()
    checks = Checks()
    # moto's CloudFormation cannot create a secret: the stacks use one made beforehand, as a
    # deployment with ExistingSecretArn does.
    secret_arn = c["secretsmanager"].create_secret(Name="idv-rehearsal", SecretString='{"api_keys":[]}')["ARN"]
    vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = c["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = c["ec2"].create_security_group(GroupName="idv", Description="idv", VpcId=vpc)["GroupId"]
    runs = [
        ("idv-rehearsal", {"ExistingSecretArn": secret_arn}),
        ("idv-hardened", {"ExistingSecretArn": secret_arn, "KmsKey": "create", "VpcSubnetIds": subnet,
                          "VpcSecurityGroupIds": sg, "AppReservedConcurrency": "20",
                          "WebhookReservedConcurrency": "30", "ReconcileReservedConcurrency": "2",
                          "EventsApiReservedConcurrency": "5", "NotifyReservedConcurrency": "4",
                          "AlarmEmail": "ops@example.com", "LogRetentionDays": "90"}),
    ]
    runs.append(("idv-single", {"ExistingSecretArn": secret_arn, "SecretLayout": "single"}))
    runs[0][1].update(params)
    all_created, all_cannot = {}, {}
    for name, p in runs:
        created, cannot, took = rehearse_stack(name, p, checks, c, moto_types)
        print(f"stack {name} ({', '.join(f'{k}={v}' for k, v in p.items() if k != 'ExistingSecretArn') or 'defaults'}): CREATE_COMPLETE in {took:.1f}s")
        for k, v in created.items():
            all_created.setdefault(k, set()).update(v)
        for k, v in cannot.items():
            all_cannot.setdefault(k, set()).update(v)
    print("created in moto and checked:")
    for k in sorted(all_created):
        print(f"  {k:34} {len(all_created[k]):3}  {', '.join(sorted(all_created[k]))[:160]}")
    print("accepted by moto but not kept (checked on the transformed template instead):")
    for line in MOTO_DROPS:
        print(f"  {line}")
    print("not creatable by moto's CloudFormation (checked on the transformed template where it is referenced, by cfn-lint,")
    print("sam validate --lint, checkov, and tests/integration/{iam,observability,openapi}.rs):")
    if "AWS::SecretsManager::Secret" not in moto_types:  # conditioned out above: said here
        all_cannot.setdefault("AWS::SecretsManager::Secret", set()).add("Secret (the stacks use ExistingSecretArn, made beforehand)")
    for k in sorted(all_cannot):
        print(f"  {k:34} {len(all_cannot[k]):3}  {', '.join(sorted(all_cannot[k]))[:160]}")
    if checks.failures:
        print("\n".join(["FAILED checks:", *checks.failures]), file=sys.stderr)
        return 1
    print(f"deploy-rehearsal: {checks.count} checks passed")
    return 0


def parse_params(argv):
    params = {}
    for a in argv:
        k, _, v = a.partition("=")
        params[k] = v
    return params


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "rehearse"
    params = parse_params(sys.argv[2:])
    if cmd == "transform":
        json.dump(transform(load_template(), params), sys.stdout, indent=1, default=str)
        return 0
    if cmd != "rehearse":
        print(__doc__, file=sys.stderr)
        return 2
    return rehearse(params)


if __name__ == "__main__":
    sys.exit(main())
