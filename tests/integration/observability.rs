//! The alarms and the dashboard of template.yaml against the code: every metric they read in the
//! gateway's namespace is one `idv::metrics` writes (an alarm on a metric nobody writes never
//! fires), every function is in the per-function alarms, every alarm notifies the topic, the
//! dashboard shows every metric, and docs/operate.md lists exactly those metrics.

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
    assert!(alarms >= 7, "only {alarms} alarms");
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
