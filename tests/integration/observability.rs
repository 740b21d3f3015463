//! The alarms and the dashboard of template.yaml against the code: every metric they read in the
//! gateway's namespace is one `idv::metrics` writes (an alarm on a metric nobody writes never
//! fires), every function is in the per-function alarms, every alarm notifies the topic, the
//! dashboard shows every metric, and docs/operate.md lists exactly those metrics. And every
//! function and dead-letter queue has the hardening options: a reserved concurrency parameter,
//! the customer-managed key (its log group, its queue), an on-failure destination for what
//! invokes it asynchronously or from a stream, an alarm and a dashboard widget on each queue.

use serde_norway::Value;
use std::collections::BTreeSet;

const NAMESPACE: &str = "idv-gateway/${AWS::StackName}";

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
        .expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn names() -> BTreeSet<&'static str> {
    idv::metrics::NAMES.iter().copied().collect()
}

/// `!Sub "..."` -> its text; `!Ref X` -> `X`; a plain string as it is.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Tagged(t) if t.tag == "Sub" || t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Every `(namespace, metric name, FunctionName dimension)` an alarm reads.
fn alarm_metrics(alarm: &Value) -> Vec<(String, String, Option<String>)> {
    let p = &alarm["Properties"];
    let mut out = Vec::new();
    let function = |dims: &Value| {
        dims.as_sequence()?
            .iter()
            .find(|d| d["Name"].as_str() == Some("FunctionName"))
            .and_then(|d| text(&d["Value"]))
    };
    if let Some(name) = p["MetricName"].as_str() {
        out.push((
            text(&p["Namespace"]).unwrap_or_default(),
            name.to_owned(),
            function(&p["Dimensions"]),
        ));
    }
    for m in p["Metrics"].as_sequence().into_iter().flatten() {
        let metric = &m["MetricStat"]["Metric"];
        if let Some(name) = metric["MetricName"].as_str() {
            out.push((
                text(&metric["Namespace"]).unwrap_or_default(),
                name.to_owned(),
                function(&metric["Dimensions"]),
            ));
        }
    }
    out
}

#[test]
fn alarms_read_metrics_the_code_writes_and_notify_the_topic() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let functions: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, _)| k.as_str().unwrap().to_owned())
        .collect();
    let topic: Value = serde_norway::from_str("[!Ref AlarmTopic]").unwrap();
    let mut problems = Vec::new();
    let mut alarms = 0;
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        alarms += 1;
        let id = id.as_str().unwrap();
        for key in ["AlarmActions", "OKActions"] {
            if r["Properties"][key] != topic {
                problems.push(format!("{id}: {key} is not [!Ref AlarmTopic]"));
            }
        }
        let metrics = alarm_metrics(r);
        if metrics.is_empty() {
            problems.push(format!("{id}: reads no metric"));
        }
        // CloudWatch's hard limit: an alarm on metric math reads at most 10 metrics (an 11th
        // function needs a second alarm).
        if metrics.len() > 10 {
            problems.push(format!(
                "{id}: reads {} metrics; CloudWatch allows 10",
                metrics.len()
            ));
        }
        for (ns, name, _) in &metrics {
            if ns == NAMESPACE && !names().contains(name.as_str()) {
                problems.push(format!("{id}: {name} is not a metric idv::metrics writes"));
            }
        }
        // An alarm summing a Lambda metric over functions covers every function, once.
        let per_function: Vec<&String> = metrics
            .iter()
            .filter(|(ns, _, f)| ns == "AWS/Lambda" && f.is_some())
            .filter_map(|(_, _, f)| f.as_ref())
            .collect();
        if per_function.len() > 1 {
            let covered: BTreeSet<String> = per_function.iter().map(|f| (*f).clone()).collect();
            if covered != functions || per_function.len() != functions.len() {
                problems.push(format!(
                    "{id}: covers {covered:?}, not each of the functions {functions:?} once"
                ));
            }
        }
    }
    assert!(alarms >= 9, "only {alarms} alarms");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The metric names a dashboard body reads in the gateway's namespace: from metric rows
/// (`[namespace, name, ...]`, `"."` repeating the row above) and from SEARCH expressions.
fn dashboard_metrics(body: &str) -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let mut out = BTreeSet::new();
    for w in json["widgets"].as_array().expect("widgets") {
        let (mut ns, mut name) = (String::new(), String::new());
        for row in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().expect("a metric row");
            if let Some(expr) = row[0]["expression"].as_str() {
                if expr.contains(&format!("{{{NAMESPACE},")) {
                    let names = &expr[expr.find("MetricName=").expect("MetricName=")..];
                    out.extend(names.split('"').skip(1).step_by(2).map(str::to_owned));
                }
                continue;
            }
            let cell = |i: usize, last: &str| match row.get(i).and_then(|c| c.as_str()) {
                Some(".") | None => last.to_owned(),
                Some(s) => s.to_owned(),
            };
            ns = cell(0, &ns);
            name = cell(1, &name);
            if ns == NAMESPACE {
                out.insert(name.clone());
            }
        }
    }
    out
}

#[test]
fn the_dashboard_shows_every_metric_the_code_writes_and_no_other() {
    let t = template();
    let body =
        text(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]).expect("a !Sub body");
    let shown = dashboard_metrics(&body);
    let written: BTreeSet<String> = names().iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(shown, written, "the dashboard's metrics in {NAMESPACE}");
}

#[test]
fn operate_md_lists_exactly_the_metrics_the_code_writes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operate.md"))
        .expect("docs/operate.md");
    let section = doc
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a Metrics section");
    let section = section.split("\n## ").next().unwrap();
    let mut listed = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        listed.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    let written: BTreeSet<String> = names().iter().map(|n| (*n).to_owned()).collect();
    assert_eq!(listed, written, "docs/operate.md's metrics table");
}

/// `!If [UseKmsKey, !If [CreateKmsKey, !GetAtt Key.Arn, !Ref KmsKey], !Ref AWS::NoValue]`
fn the_key() -> Value {
    serde_norway::from_str(
        "!If [UseKmsKey, !If [CreateKmsKey, !GetAtt Key.Arn, !Ref KmsKey], !Ref AWS::NoValue]",
    )
    .unwrap()
}

/// `X` of `!GetAtt X.Arn`.
fn arn_of(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => {
            t.value.as_str()?.strip_suffix(".Arn").map(str::to_owned)
        }
        _ => None,
    }
}

#[test]
fn every_function_and_dead_letter_queue_is_hardened_and_watched() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let params = t["Parameters"].as_mapping().expect("Parameters");
    let conditions = &t["Conditions"];
    let kms_use: Value =
        serde_norway::from_str("!If [UseKmsKey, !Ref KmsUsePolicy, !Ref AWS::NoValue]").unwrap();
    let body =
        text(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]).expect("a !Sub body");
    let mut problems = Vec::new();
    let g = &t["Globals"]["Function"];
    if g["Tracing"].as_str() != Some("Active") {
        problems.push("Globals: Tracing is not Active (X-Ray)".to_owned());
    }
    // Queues named as an on-failure destination or a schedule's dead letters.
    let mut destinations = BTreeSet::new();
    for (id, r) in resources {
        let id = id.as_str().unwrap();
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let p = &r["Properties"];
        // Reserved concurrency: `!If [HasX, !Ref X, !Ref AWS::NoValue]`, X a Number parameter
        // defaulting to 0 (none), HasX its not-zero condition.
        let reserved = match &p["ReservedConcurrentExecutions"] {
            Value::Tagged(tag) if tag.tag == "If" => tag.value.as_sequence().cloned(),
            _ => None,
        };
        match reserved.as_deref() {
            Some([Value::String(cond), Value::Tagged(r), _]) if r.tag == "Ref" => {
                let param = r.value.as_str().unwrap_or_default();
                let ok_param = params.get(param).is_some_and(|d| {
                    d["Type"].as_str() == Some("Number") && d["Default"].as_u64() == Some(0)
                });
                let want: Value =
                    serde_norway::from_str(&format!("!Not [!Equals [!Ref {param}, 0]]")).unwrap();
                if !ok_param || conditions[cond.as_str()] != want {
                    problems.push(format!("{id}: reserved concurrency {param} / {cond}"));
                }
            }
            _ => problems.push(format!("{id}: no reserved concurrency parameter")),
        }
        let policies = p["Policies"].as_sequence().cloned().unwrap_or_default();
        if !policies.contains(&kms_use) {
            problems.push(format!("{id}: not given the key's use policy"));
        }
        let group = text(&p["LoggingConfig"]["LogGroup"]).unwrap_or_default();
        if resources
            .get(group.as_str())
            .is_none_or(|g| g["Properties"]["KmsKeyId"] != the_key())
        {
            problems.push(format!("{id}: log group {group:?} without the key option"));
        }
        for (name, event) in p["Events"].as_mapping().into_iter().flatten() {
            let ep = &event["Properties"];
            match event["Type"].as_str() {
                // Asynchronous: the schedule's dead letters and the function's on-failure
                // destination.
                Some("Schedule") => {
                    let dl = arn_of(&ep["DeadLetterConfig"]["Arn"]);
                    let on_failure = arn_of(
                        &p["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
                    );
                    if dl.is_none() || on_failure.is_none() {
                        problems.push(format!(
                            "{id}: schedule {name:?} without dead letters and an on-failure destination"
                        ));
                    }
                    destinations.extend(dl.into_iter().chain(on_failure));
                }
                Some("DynamoDB" | "SQS" | "Kinesis") => {
                    match arn_of(&ep["DestinationConfig"]["OnFailure"]["Destination"]) {
                        Some(q) => {
                            destinations.insert(q);
                        }
                        None => problems.push(format!(
                            "{id}: event source {name:?} without an on-failure destination"
                        )),
                    }
                }
                _ => {}
            }
        }
    }
    let mut queues = 0;
    for (id, r) in resources {
        let id = id.as_str().unwrap();
        if r["Type"].as_str() != Some("AWS::SQS::Queue") {
            continue;
        }
        queues += 1;
        if !destinations.contains(id) {
            problems.push(format!("{id}: a queue no function sends its failures to"));
        }
        if r["Properties"]["KmsMasterKeyId"] != the_key() {
            problems.push(format!("{id}: without the key option"));
        }
        let watched = resources.iter().any(|(_, a)| {
            a["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && a["Properties"]["Namespace"].as_str() == Some("AWS/SQS")
                && a["Properties"]["Dimensions"][0]["Value"]
                    == serde_norway::from_str::<Value>(&format!("!GetAtt {id}.QueueName")).unwrap()
        });
        if !watched {
            problems.push(format!("{id}: no alarm on its depth"));
        }
        if !body.contains(&format!("${{{id}.QueueName}}")) {
            problems.push(format!("{id}: not on the dashboard"));
        }
    }
    for q in &destinations {
        if resources
            .get(q.as_str())
            .is_none_or(|r| r["Type"].as_str() != Some("AWS::SQS::Queue"))
        {
            problems.push(format!(
                "{q}: a destination that is not a queue of the template"
            ));
        }
    }
    assert!(queues >= 2, "only {queues} dead-letter queues");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
