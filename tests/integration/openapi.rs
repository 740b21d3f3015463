//! `openapi.yaml` stays true: it declares exactly the routes the gateway serves, `template.yaml`
//! wires each of them to the function that serves it, and real answers of the local server match
//! the schema openapi.yaml declares for their operation, status and content type.
//!
//! The schema checker below knows the subset of JSON Schema that openapi.yaml's responses use:
//! `$ref` (to `#/...`), `type` (one or several), `enum`, `const`, `required`, `properties`,
//! `additionalProperties`, `items`, `allOf`/`anyOf`/`oneOf`, `minimum`/`maximum`,
//! `minLength`/`maxLength` and `format` (`date-time`, `uri`, `uri-reference`). `pattern` is not
//! checked (no regex crate in the workspace). A keyword it does not know fails the test, so a new
//! one in openapi.yaml can't be silently ignored. Objects are closed: a property the schema does
//! not declare fails, unless the schema says `additionalProperties`; so a field added to the code
//! but not to openapi.yaml is caught.

use idv::http::Function;
use idv::http::routes::DEFAULT_ROUTE_FUNCTION;
use idv_tests::ProveOf;
use idv_tests::{Backend, Gateway, Reply};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// openapi.yaml as JSON.
fn openapi() -> Value {
    serde_norway::from_str(&repo_file("openapi.yaml")).expect("openapi.yaml is YAML")
}

fn routes() -> BTreeMap<(String, String), Function> {
    idv::http::routes()
        .into_iter()
        .map(|(m, p, f)| ((m.to_string(), p.to_string()), f))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Routes
// ------------------------------------------------------------------------------------------

#[test]
fn openapi_declares_exactly_the_routes_the_gateway_serves() {
    let doc = openapi();
    let paths = doc["paths"].as_object().expect("openapi.yaml has paths");
    let mut declared = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item");
        for key in item.keys() {
            if HTTP_METHODS.contains(&key.as_str()) {
                declared.insert((key.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<_> = routes().into_keys().collect();
    let undeclared: Vec<_> = served.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "routes the gateway serves that openapi.yaml does not declare: {undeclared:?}"
    );
    let unserved: Vec<_> = declared.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "operations openapi.yaml declares that the gateway does not serve: {unserved:?}"
    );
}

/// API Gateway's route key of the `$default` route: what matches no other route.
const DEFAULT_ROUTE: &str = "$default";

/// One `HttpApi` event of template.yaml.
#[derive(Debug)]
struct TemplateRoute {
    resource: String,
    binary: String,
    /// `ANY` for the `$default` route.
    method: String,
    /// `$default` for the `$default` route (an event without Path and Method, in SAM).
    path: String,
    payload_format: Option<String>,
    api_id_ref: Option<String>,
    /// The parameters its `RouteSettings` throttle it with (`!Ref`s), if any.
    rate_limit_ref: Option<String>,
    burst_limit_ref: Option<String>,
}

impl TemplateRoute {
    fn is_default(&self) -> bool {
        self.path == DEFAULT_ROUTE
    }

    /// API Gateway's route key, e.g. `POST /v1/webhooks/prove` or `$default`.
    fn key(&self) -> String {
        if self.is_default() {
            DEFAULT_ROUTE.to_owned()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

/// The parameter a `!Ref` names.
fn ref_name(v: Option<&serde_norway::Value>) -> Option<String> {
    match v {
        Some(serde_norway::Value::Tagged(t)) if t.tag == "Ref" => yaml_str(&t.value),
        _ => None,
    }
}

fn template() -> serde_norway::Value {
    serde_norway::from_str(&repo_file("template.yaml")).expect("template.yaml is YAML")
}

fn yaml_str(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `HttpApi` events of every `AWS::Serverless::Function` of template.yaml. CloudFormation's
/// short tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`) load as tagged values.
fn template_routes() -> Vec<TemplateRoute> {
    let doc = template();
    let resources = doc
        .get("Resources")
        .and_then(|r| r.as_mapping())
        .expect("template.yaml has Resources");
    let mut out = Vec::new();
    for (name, resource) in resources {
        if resource.get("Type").and_then(|t| t.as_str()) != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = yaml_str(name).expect("a resource name");
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(yaml_str)
            .unwrap_or_else(|| panic!("{name} has no Metadata.BuildProperties.Binary"));
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(|e| e.as_mapping());
        for (_, event) in events.into_iter().flatten() {
            if event.get("Type").and_then(|t| t.as_str()) != Some("HttpApi") {
                continue;
            }
            let props = event.get("Properties").expect("HttpApi event properties");
            let field = |k: &str| props.get(k).and_then(yaml_str);
            let settings = props.get("RouteSettings");
            // SAM makes an event without Path and Method the `$default` route.
            let (method, path) = match (field("Method"), field("Path")) {
                (None, None) => ("ANY".to_owned(), DEFAULT_ROUTE.to_owned()),
                (Some(m), Some(p)) => (m.to_ascii_uppercase(), p),
                _ => panic!("{name}: an HttpApi event with only one of Method and Path"),
            };
            out.push(TemplateRoute {
                resource: name.clone(),
                binary: binary.clone(),
                method,
                path,
                payload_format: field("PayloadFormatVersion"),
                api_id_ref: ref_name(props.get("ApiId")),
                rate_limit_ref: ref_name(settings.and_then(|s| s.get("ThrottlingRateLimit"))),
                burst_limit_ref: ref_name(settings.and_then(|s| s.get("ThrottlingBurstLimit"))),
            });
        }
    }
    out
}

#[test]
fn template_routes_each_route_to_the_function_that_serves_it() {
    let served = routes();
    let wired = template_routes();
    let mut seen = BTreeSet::new();
    // The `$default` route: exactly one, on the function the local server also sends unmatched
    // requests to (its handler answers 404/405 for them).
    let defaults: Vec<_> = wired.iter().filter(|r| r.is_default()).collect();
    assert_eq!(
        defaults.len(),
        1,
        "template.yaml must route `$default` (an HttpApi event without Path and Method) once: {defaults:?}"
    );
    assert_eq!(
        defaults[0].binary,
        DEFAULT_ROUTE_FUNCTION.binary(),
        "template.yaml's $default route and idv::http::routes::DEFAULT_ROUTE_FUNCTION disagree"
    );
    for r in &wired {
        let key = (r.method.clone(), r.path.clone());
        if r.is_default() {
            assert_eq!(r.payload_format.as_deref(), Some("2.0"), "$default");
            assert_eq!(r.api_id_ref.as_deref(), Some("HttpApi"), "$default");
            continue;
        }
        let function = served.get(&key).unwrap_or_else(|| {
            panic!(
                "template.yaml routes {} {} ({}) but the gateway does not serve it",
                r.method, r.path, r.resource
            )
        });
        assert_eq!(
            r.binary,
            function.binary(),
            "template.yaml sends {} {} to {}; the route table to {}",
            r.method,
            r.path,
            r.binary,
            function.binary()
        );
        // from_lambda reads payload format 2.0, and all routes belong to the one HTTP API.
        assert_eq!(
            r.payload_format.as_deref(),
            Some("2.0"),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(
            r.api_id_ref.as_deref(),
            Some("HttpApi"),
            "{} {}",
            r.method,
            r.path
        );
        assert!(
            seen.insert(key),
            "template.yaml routes {} {} twice",
            r.method,
            r.path
        );
        assert!(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../functions")
                .join(&r.binary)
                .join("Cargo.toml")
                .exists(),
            "{}: no crate functions/{} builds its binary",
            r.resource,
            r.binary
        );
    }
    let unwired: Vec<_> = served.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        unwired.is_empty(),
        "routes the gateway serves that template.yaml does not route: {unwired:?}"
    );
}

/// The throttling parameters of one kind of route: `(rate, burst)`.
const APP_LIMITS: (&str, &str) = ("ApiThrottlingRateLimit", "ApiThrottlingBurstLimit");
const WEBHOOK_LIMITS: (&str, &str) = ("WebhookThrottlingRateLimit", "WebhookThrottlingBurstLimit");
const UNKNOWN_ROUTE_LIMITS: (&str, &str) = (
    "UnknownRouteThrottlingRateLimit",
    "UnknownRouteThrottlingBurstLimit",
);

/// Provider webhooks are the operations openapi.yaml tags `webhooks`.
fn is_webhook(spec: &Value, method: &str, path: &str) -> bool {
    spec["paths"][path][method.to_ascii_lowercase()]["tags"]
        .as_array()
        .is_some_and(|tags| tags.contains(&json!("webhooks")))
}

/// docs/edge-throttling.md: every route of the stage has its own bucket, set by its own
/// RouteSettings; every provider webhook route uses the webhook parameters (higher than the app
/// routes', so junk on a webhook needs more before real deliveries get 429), app routes the app
/// parameters, `$default` its own. A webhook route added without them fails here.
#[test]
fn template_throttles_every_route_and_each_webhook_with_its_own_higher_limits() {
    let spec = openapi();
    let doc = template();
    let mut webhooks = BTreeSet::new();
    for r in template_routes() {
        let want = if r.is_default() {
            UNKNOWN_ROUTE_LIMITS
        } else if is_webhook(&spec, &r.method, &r.path) {
            webhooks.insert(r.key());
            WEBHOOK_LIMITS
        } else {
            APP_LIMITS
        };
        assert_eq!(
            (r.rate_limit_ref.as_deref(), r.burst_limit_ref.as_deref()),
            (Some(want.0), Some(want.1)),
            "template.yaml: {} ({}) must set RouteSettings ThrottlingRateLimit/ThrottlingBurstLimit to !Ref {} / !Ref {}",
            r.key(),
            r.resource,
            want.0,
            want.1
        );
    }
    let served_webhooks: BTreeSet<String> = idv::http::routes()
        .iter()
        .filter(|(m, p, _)| is_webhook(&spec, m, p))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        !served_webhooks.is_empty(),
        "openapi.yaml tags no operation `webhooks`"
    );
    assert_eq!(
        webhooks, served_webhooks,
        "every webhook route has its own throttling in template.yaml"
    );

    // Each parameter: a number with a safe default, within API Gateway's account limits
    // (10,000 rps, burst 5,000, per region by default).
    let param = |name: &str, key: &str| -> f64 {
        doc.get("Parameters")
            .and_then(|p| p.get(name))
            .and_then(|p| p.get(key))
            .and_then(|v| match v {
                serde_norway::Value::Number(n) => n.as_f64(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("template.yaml: parameter {name} has no numeric {key}"))
    };
    for (rate, burst) in [APP_LIMITS, WEBHOOK_LIMITS, UNKNOWN_ROUTE_LIMITS] {
        for (name, account_max) in [(rate, 10_000.0), (burst, 5_000.0)] {
            let (min, default, max) = (
                param(name, "MinValue"),
                param(name, "Default"),
                param(name, "MaxValue"),
            );
            assert!(
                1.0 <= min && min <= default && default <= max && max <= account_max,
                "template.yaml: {name}: MinValue {min} <= Default {default} <= MaxValue {max} <= {account_max}"
            );
        }
    }
    for i in [0, 1] {
        let pick = |l: (&'static str, &'static str)| if i == 0 { l.0 } else { l.1 };
        assert!(
            param(pick(WEBHOOK_LIMITS), "Default") > param(pick(APP_LIMITS), "Default"),
            "webhook routes default to higher limits than app routes"
        );
        assert!(
            param(pick(UNKNOWN_ROUTE_LIMITS), "Default") <= param(pick(APP_LIMITS), "Default"),
            "$default (junk only) defaults to no more than an app route"
        );
    }
    // A route added without RouteSettings still gets the app routes' limits.
    let defaults = doc
        .get("Resources")
        .and_then(|r| r.get("HttpApi"))
        .and_then(|a| a.get("Properties"))
        .and_then(|p| p.get("DefaultRouteSettings"))
        .expect("HttpApi DefaultRouteSettings");
    assert_eq!(
        (
            ref_name(defaults.get("ThrottlingRateLimit")).as_deref(),
            ref_name(defaults.get("ThrottlingBurstLimit")).as_deref()
        ),
        (Some(APP_LIMITS.0), Some(APP_LIMITS.1)),
        "HttpApi DefaultRouteSettings"
    );
}

// ------------------------------------------------------------------------------------------
// The schema checker
// ------------------------------------------------------------------------------------------

/// Keywords that say nothing about validity.
const ANNOTATIONS: [&str; 9] = [
    "description",
    "example",
    "examples",
    "default",
    "title",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

pub(crate) struct Spec {
    doc: Value,
}

impl Spec {
    pub(crate) fn load() -> Spec {
        Spec { doc: openapi() }
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn pointer(&self, reference: &str) -> &Value {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs are supported: {reference}"));
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.yaml: dangling $ref {reference}"))
    }

    /// An object that may be a `$ref` to one (a response, a parameter).
    fn deref<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.deref(self.pointer(r)),
            None => v,
        }
    }

    /// The schema openapi.yaml declares for this operation's answer with this status and
    /// content type (`None`: a response declared without a body, answered without one); an
    /// undeclared status or content type is an error.
    fn response_schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
    ) -> Result<Option<&Value>, String> {
        let op = self
            .doc
            .get("paths")
            .and_then(|p| p.get(template))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .ok_or_else(|| format!("openapi.yaml has no operation {method} {template}"))?;
        let responses = op
            .get("responses")
            .ok_or_else(|| format!("{method} {template} declares no responses"))?;
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get(format!("{}XX", status / 100)))
            .or_else(|| responses.get("default"))
            .ok_or_else(|| format!("{method} {template} does not declare status {status}"))?;
        let response = self.deref(response);
        if content_type.is_empty() && response.get("content").is_none() {
            return Ok(None);
        }
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let content = response.get("content").ok_or_else(|| {
            format!("{method} {template} {status} declares no body, but one came")
        })?;
        content
            .get(&media)
            .and_then(|c| c.get("schema"))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{method} {template} {status} declares {:?}, not {media:?}",
                    content
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                )
            })
    }

    /// Checks `value` against `schema`, adding one line per violation to `errors`.
    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{at}: nothing is allowed here"));
                return;
            }
            Value::Object(o) => o,
            other => panic!("openapi.yaml: a schema that is not an object at {at}: {other}"),
        };
        for (keyword, arg) in schema {
            match keyword.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                // Not checked: no regex crate (see the module doc).
                "pattern" => {}
                // Checked with `properties` when there are some; else every value against it.
                "additionalProperties" => {
                    if let (None, Some(obj)) = (schema.get("properties"), value.as_object()) {
                        for (name, v) in obj {
                            self.check(arg, v, &format!("{at}.{name}"), errors);
                        }
                    }
                }
                "maxProperties" => {
                    let bound = arg.as_u64().expect("a count") as usize;
                    if let Some(obj) = value.as_object()
                        && obj.len() > bound
                    {
                        errors.push(format!("{at}: {} properties, over {bound}", obj.len()));
                    }
                }
                "propertyNames" => {
                    if let Some(obj) = value.as_object() {
                        for name in obj.keys() {
                            let here = format!("{at} (key {name:?})");
                            self.check(arg, &Value::String(name.clone()), &here, errors);
                        }
                    }
                }
                "$ref" => {
                    let target = self.pointer(arg.as_str().expect("a $ref string"));
                    self.check(target, value, at, errors);
                }
                "type" => {
                    let allowed: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        other => panic!("openapi.yaml: type {other} at {at}"),
                    };
                    if !allowed.iter().any(|t| has_type(value, t)) {
                        errors.push(format!("{at}: {value} is not of type {allowed:?}"));
                    }
                }
                "enum" => {
                    let options = arg.as_array().expect("an enum list");
                    if !options.contains(value) {
                        errors.push(format!("{at}: {value} is not one of {arg}"));
                    }
                }
                "const" => {
                    if value != arg {
                        errors.push(format!("{at}: {value} is not {arg}"));
                    }
                }
                "required" => {
                    if let Some(obj) = value.as_object() {
                        for name in arg.as_array().expect("a required list") {
                            let name = name.as_str().expect("a property name");
                            if !obj.contains_key(name) {
                                errors.push(format!("{at}: required property {name:?} is missing"));
                            }
                        }
                    }
                }
                "properties" => {
                    let declared = arg.as_object().expect("properties");
                    if let Some(obj) = value.as_object() {
                        for (name, v) in obj {
                            let here = format!("{at}.{name}");
                            match (declared.get(name), schema.get("additionalProperties")) {
                                (Some(s), _) => self.check(s, v, &here, errors),
                                (None, Some(extra)) => self.check(extra, v, &here, errors),
                                (None, None) => errors.push(format!(
                                    "{here}: a property openapi.yaml does not declare (value {v})"
                                )),
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(items) = value.as_array() {
                        for (i, v) in items.iter().enumerate() {
                            self.check(arg, v, &format!("{at}[{i}]"), errors);
                        }
                    }
                }
                "allOf" => {
                    for s in arg.as_array().expect("allOf list") {
                        self.check(s, value, at, errors);
                    }
                }
                "anyOf" | "oneOf" => {
                    let branches = arg.as_array().expect("a list of schemas");
                    let mut failures = Vec::new();
                    let mut matched = 0;
                    for s in branches {
                        let mut errs = Vec::new();
                        self.check(s, value, at, &mut errs);
                        if errs.is_empty() {
                            matched += 1;
                        } else {
                            failures.push(errs.join("; "));
                        }
                    }
                    if matched == 0 {
                        errors.push(format!(
                            "{at}: {value} matches none of {keyword}: {failures:?}"
                        ));
                    } else if keyword == "oneOf" && matched > 1 {
                        errors.push(format!("{at}: {value} matches {matched} branches of oneOf"));
                    }
                }
                "minimum" | "maximum" => {
                    let bound = arg.as_f64().expect("a number");
                    if let Some(n) = value.as_f64() {
                        let ok = if keyword == "minimum" {
                            n >= bound
                        } else {
                            n <= bound
                        };
                        if !ok {
                            errors.push(format!("{at}: {n} violates {keyword} {bound}"));
                        }
                    }
                }
                "minLength" | "maxLength" => {
                    let bound = arg.as_u64().expect("a length") as usize;
                    if let Some(s) = value.as_str() {
                        let n = s.chars().count();
                        let ok = if keyword == "minLength" {
                            n >= bound
                        } else {
                            n <= bound
                        };
                        if !ok {
                            errors.push(format!("{at}: length {n} violates {keyword} {bound}"));
                        }
                    }
                }
                "format" => {
                    if let Some(s) = value.as_str()
                        && let Err(why) = check_format(arg.as_str().expect("a format"), s)
                    {
                        errors.push(format!("{at}: {s:?} {why}"));
                    }
                }
                other => errors.push(format!(
                    "{at}: the checker does not know the keyword {other:?}; teach it before relying on it"
                )),
            }
        }
    }

    /// The reply must be declared for the operation (status and content type) and its body must
    /// match the declared schema.
    pub(crate) fn assert_conforms(&self, method: &str, template: &str, reply: &Reply) {
        let content_type = reply
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(schema) = self
            .response_schema(method, template, reply.status, content_type)
            .unwrap_or_else(|e| panic!("{e}; body: {}", reply.body))
        else {
            assert!(
                reply.body.is_null(),
                "{method} {template} answered {} with a body but openapi.yaml declares none: {}",
                reply.status,
                reply.body
            );
            return;
        };
        let mut errors = Vec::new();
        self.check(schema, &reply.body, "$", &mut errors);
        assert!(
            errors.is_empty(),
            "{method} {template} answered {} with a body openapi.yaml does not allow:\n  {}\nbody: {:#}",
            reply.status,
            errors.join("\n  "),
            reply.body
        );
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("openapi.yaml: unknown type {other:?}"),
    }
}

fn check_format(format: &str, s: &str) -> Result<(), String> {
    match format {
        "date-time" => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|_| ())
                .map_err(|e| format!("is not an RFC 3339 date-time: {e}"))
        }
        "uri" => url::Url::parse(s)
            .map(|_| ())
            .map_err(|e| format!("is not an absolute URI: {e}")),
        "uri-reference" => url::Url::parse("https://base.invalid/")
            .and_then(|base| base.join(s))
            .map(|_| ())
            .map_err(|e| format!("is not a URI reference: {e}")),
        other => Err(format!(
            "has the format {other:?}, which the checker does not know"
        )),
    }
}

#[test]
fn the_checker_catches_what_openapi_forbids() {
    let spec = Spec::load();
    let session = json!({"$ref": "#/components/schemas/Session"});
    let good = json!({
        "id": "ses_01jd8x7k2m4n6p8q0r2s4t6v8w", "object": "verification_session",
        "provider": "authento", "user_id": "user-42", "status": "verified",
        "provider_status": "VERIFIED", "provider_ref": null, "last_error": null, "verification_type": "BASIC",
        "created_at": "2026-11-18T11:06:40Z", "updated_at": "2026-11-18T11:12:03Z",
        "expires_at": null, "metadata": {"order_id": "ord_123"},
        "previous_session_id": null, "next_session_id": null
    });
    let errors = |v: &Value| {
        let mut e = Vec::new();
        spec.check(&session, v, "$", &mut e);
        e
    };
    assert_eq!(errors(&good), Vec::<String>::new());
    let mut extra = good.clone();
    extra["history"] = json!([]);
    assert_eq!(errors(&extra).len(), 1, "an undeclared property");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("expires_at");
    assert_eq!(errors(&missing).len(), 1, "a required property");
    let mut wrong = good.clone();
    wrong["status"] = json!("approved");
    wrong["last_error"] = json!({"code": "x"});
    wrong["created_at"] = json!("yesterday");
    assert_eq!(errors(&wrong).len(), 3, "{:?}", errors(&wrong));
    let mut labels = good.clone();
    labels["metadata"] = json!({"n": 1, "k".repeat(41): "v", "long": "x".repeat(501)});
    assert_eq!(errors(&labels).len(), 3, "{:?}", errors(&labels));
    labels["metadata"] = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(errors(&labels).len(), 1, "{:?}", errors(&labels));
}

// ------------------------------------------------------------------------------------------
// Real answers
// ------------------------------------------------------------------------------------------

async fn post_unauthenticated(gw: &Gateway, path: &str, body: &Value) -> Reply {
    gw.send(gw.http.post(gw.url(path)).json(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_a_token_answers_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let op = ("POST", "/v1/tokens");

    let r = gw.issue_token("user-oa-token", "BASIC").await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    let r = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "user-oa-full", "verification_type": "POA", "user_type": "CORPORATE", "lang": "de", "metadata": {"order_id": "ord_1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    // Every field wrong at once: a problem with `errors`.
    let r = gw
        .post(
            "/v1/tokens",
            &json!({"user_id": "has space", "verification_type": "GOLD", "extra": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["errors"].as_array().is_some_and(|e| e.len() == 3),
        "{}",
        r.body
    );
    spec.assert_conforms(op.0, op.1, &r);

    let r = post_unauthenticated(
        &gw,
        "/v1/tokens",
        &json!({"user_id": "u", "verification_type": "BASIC"}),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/tokens"))
                .bearer_auth(&gw.key)
                .header("content-type", "text/plain")
                .body("user_id=u"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/tokens"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "oa-1")
                .json(&json!({"user_id": "user-oa-idem", "verification_type": "BASIC"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/tokens"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", "oa-1")
                .json(&json!({"user_id": "user-oa-idem", "verification_type": "POA"})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_session_answers_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let op = ("POST", "/v1/sessions");

    // A provider this deployment is not configured for (no Nevis instance URL): 422.
    let unconfigured = Gateway::start_with(Backend::Memory, &[("IDV_NEVIS_API_URL", "")]).await;
    let r = unconfigured
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-oa-nevis"}),
        )
        .await;
    unconfigured.stop().await;
    assert_eq!(r.status, 422, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    let r = gw
        .post("/v1/sessions", &json!({"user_id": "user-oa-none"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    // Authento: the session object itself, with `client` (token, verify_url), as for every provider.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "authento", "user_id": "user-oa-start", "verification_type": "POA"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    // Nevis: `client` holds `start_url`; a read of it conforms too.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-oa-nevis"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);
    let id = r.body["id"].as_str().unwrap();
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms("GET", "/v1/sessions/{id}", &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_listing_and_canceling_sessions_answer_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let get = ("GET", "/v1/sessions/{id}");
    let list = ("GET", "/v1/users/{user_id}/sessions");
    let cancel = ("POST", "/v1/sessions/{id}/cancel");
    let user = "user-oa-read";

    // Created, never seen by Authento: nulls where openapi.yaml allows them.
    let created = gw.issue_token(user, "BASIC").await;
    let id = created.body["session"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);

    // Rejected by Authento: `failed`, with a provider status and a `last_error` object.
    let rejected = gw.issue_token(user, "POA").await;
    let rejected_id = rejected.body["session"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    gw.authento(user, "POA", "reject", false).await;
    let r = gw.get(&format!("/v1/sessions/{rejected_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(r.body["last_error"].is_object(), "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);

    let r = gw.get("/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);
    let r = gw.get(&format!("/v1/sessions/{id}?refresh=maybe")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);

    // One page with a cursor, then the last one.
    let r = gw.get(&format!("/v1/users/{user}/sessions?limit=1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["next_cursor"].is_string(), "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    let cursor = r.body["next_cursor"].as_str().expect("cursor").to_owned();
    let r = gw
        .send(
            gw.http
                .get(gw.url(&format!("/v1/users/{user}/sessions")))
                .query(&[("limit", "1"), ("cursor", cursor.as_str())])
                .bearer_auth(&gw.key),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    let r = gw.get(&format!("/v1/users/{user}/sessions?limit=0")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    // A cursor of another listing (another user's): 400 naming `cursor`, as openapi.yaml says.
    let r = gw
        .get(&format!("/v1/users/{user}-other/sessions?cursor={cursor}"))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "cursor", "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);

    // A cancel takes no fields (openapi.yaml: additionalProperties false): refused, not canceled.
    let r = gw
        .post(
            &format!("/v1/sessions/{id}/cancel"),
            &json!({"reason": "typo"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "reason", "{}", r.body);
    assert_eq!(r.body["errors"][0]["code"], "unknown_field", "{}", r.body);
    spec.assert_conforms(cancel.0, cancel.1, &r);
    let r = gw.get(&format!("/v1/sessions/{id}?refresh=false")).await;
    assert_ne!(r.body["status"], "canceled", "{}", r.body);

    let r = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "canceled", "{}", r.body);
    spec.assert_conforms(cancel.0, cancel.1, &r);
    let r = gw
        .post(&format!("/v1/sessions/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    spec.assert_conforms(cancel.0, cancel.1, &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_the_tenants_sessions_answers_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Dynamo).await;
    let list = ("GET", "/v1/sessions");
    let start = ("POST", "/v1/sessions");
    for user in ["user-oa-l1", "user-oa-l2"] {
        let r = gw.issue_token(user, "BASIC").await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    gw.authento("user-oa-l2", "BASIC", "reject", true).await;
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "stripe", "user_id": "user-oa-l1",
                    "return_url": "https://app.example:8443/back"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(start.0, start.1, &r);
    // A provider without a page to return from: 400 naming return_url, as declared.
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "user-oa-l1", "return_url": "https://app.example/back"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(start.0, start.1, &r);

    let get = |q: Vec<(&'static str, String)>| {
        gw.send(
            gw.http
                .get(gw.url("/v1/sessions"))
                .query(&q)
                .bearer_auth(&gw.key),
        )
    };
    let r = get(vec![("limit", "1".into())]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["next_cursor"].is_string(), "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = get(vec![("limit", "1".into()), ("cursor", cursor.clone())]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    let r = get(vec![
        ("status", "failed".into()),
        ("provider", "authento".into()),
        ("created_after", "2020-01-01T00:00:00Z".into()),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"][0]["status"], "failed", "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    for bad in [
        vec![("status", "done".into())],
        vec![("created_before", "soon".into())],
        vec![
            ("limit", "1".into()),
            ("status", "failed".into()),
            ("cursor", cursor),
        ],
    ] {
        let r = get(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        spec.assert_conforms(list.0, list.1, &r);
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_and_retrying_sessions_answer_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let resume = ("POST", "/v1/sessions/{id}/resume");
    let retry = ("POST", "/v1/sessions/{id}/retry");
    let id = |r: &Reply| {
        r.body.get("session").unwrap_or(&r.body)["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };

    // An open session resumed; a body with fields, an unknown session.
    let a = id(&gw.issue_token("user-oa-again", "BASIC").await);
    let r = gw
        .post(&format!("/v1/sessions/{a}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(resume.0, resume.1, &r);
    let r = gw
        .post(&format!("/v1/sessions/{a}/resume"), &json!({"lang": "de"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(resume.0, resume.1, &r);
    let r = gw
        .post(
            "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/resume",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms(resume.0, resume.1, &r);
    // A provider without a new step: 409 not_supported.
    let p = id(&gw.start_prove("user-oa-again", "mobile", json!({})).await);
    let r = gw
        .post(&format!("/v1/sessions/{p}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "not_supported");
    spec.assert_conforms(resume.0, resume.1, &r);

    // An open session is not retried; canceled, it is (once), and no longer resumed.
    let r = gw
        .post(&format!("/v1/sessions/{a}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    spec.assert_conforms(retry.0, retry.1, &r);
    gw.post(&format!("/v1/sessions/{a}/cancel"), &json!({}))
        .await;
    let r = gw
        .post(&format!("/v1/sessions/{a}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    spec.assert_conforms(resume.0, resume.1, &r);
    let r = gw
        .post(
            &format!("/v1/sessions/{a}/retry"),
            &json!({"provider": "nevis"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(retry.0, retry.1, &r);
    let r = gw
        .post(&format!("/v1/sessions/{a}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["previous_session_id"], a.as_str());
    spec.assert_conforms(retry.0, retry.1, &r);
    let r = gw.get(&format!("/v1/sessions/{a}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["next_session_id"].is_string(), "{}", r.body);
    spec.assert_conforms("GET", "/v1/sessions/{id}", &r);
    let r = gw
        .post(&format!("/v1/sessions/{a}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    spec.assert_conforms(retry.0, retry.1, &r);
    let r = gw
        .post(
            "/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaaaaaaaa/retry",
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms(retry.0, retry.1, &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_answer_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let op = ("POST", "/v1/webhooks/authento");
    let user = "user-oa-hook";
    gw.issue_token(user, "BASIC").await;
    let sim = gw.authento(user, "BASIC", "approve", false).await;
    let body = sim["webhook"]["body"].as_str().expect("webhook body");
    let digest = sim["webhook"]["digest"].as_str().expect("webhook digest");

    let r = gw.deliver_authento(body, Some(&"0".repeat(64))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["code"], "invalid_signature", "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    let r = gw.deliver_authento(body, Some(digest)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);
    let r = gw.deliver_authento(body, Some(digest)).await;
    assert_eq!(r.body["duplicate"], true, "{}", r.body);
    spec.assert_conforms(op.0, op.1, &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_whose_authento_read_is_refused_answers_a_declared_status() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let user = "user-oa-refused";
    gw.issue_token(user, "BASIC").await;
    let sim = gw.authento(user, "BASIC", "approve", false).await;
    // Authento refuses the gateway's read (as with wrong API credentials).
    gw.authento_faults(json!({"fail_next": 1, "status": 401}))
        .await;
    let r = gw
        .deliver_authento(
            sim["webhook"]["body"].as_str().expect("body"),
            sim["webhook"]["digest"].as_str(),
        )
        .await;
    spec.assert_conforms("POST", "/v1/webhooks/authento", &r);
    gw.stop().await;
}

fn http_method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).expect("a method")
}

/// The routes' path parameters filled in with values that match no session.
fn sample_path(template: &str) -> String {
    template
        .replace("{id}", "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa")
        .replace("{user_id}", "user-oa-nobody")
}

#[test]
fn every_app_operation_declares_the_scope_its_route_checks() {
    let spec = Spec::load();
    for (method, template, _) in &idv::http::routes() {
        let op = &spec.doc["paths"][*template][method.to_ascii_lowercase()];
        let path = sample_path(template);
        let route = idv::http::Route::matching(&http_method(method), &path).unwrap();
        let declared: Vec<&str> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|req| req.get("apiKey"))
            .flat_map(|s| s.as_array().into_iter().flatten())
            .filter_map(|s| s.as_str())
            .collect();
        let checked: Vec<&str> = route.scope().map(|s| s.as_str()).into_iter().collect();
        assert_eq!(declared, checked, "{method} {template}");
        assert_eq!(
            op["responses"].get("403").is_some(),
            route.scope().is_some(),
            "{method} {template}: a 403 exactly where a scope is needed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_openapi_secures_with_the_api_key_refuse_calls_without_it() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let global_security = spec.doc.get("security").cloned().unwrap_or(json!([]));
    for (method, template, _) in &idv::http::routes() {
        let op = &spec.doc["paths"][*template][method.to_ascii_lowercase()];
        let security = op.get("security").unwrap_or(&global_security);
        let needs_key = security
            .as_array()
            .is_some_and(|s| s.iter().any(|req| req.get("apiKey").is_some()));
        let url = gw.url(&sample_path(template));
        let req = match *method {
            "GET" | "DELETE" => gw.http.request(http_method(method), url),
            _ => gw.http.request(http_method(method), url).json(&json!({})),
        };
        let r = gw.send(req).await;
        spec.assert_conforms(method, template, &r);
        if needs_key {
            assert_eq!(
                r.status, 401,
                "{method} {template} without a key: {}",
                r.body
            );
            assert_eq!(r.body["code"], "unauthenticated", "{method} {template}");
            assert_eq!(
                r.headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{method} {template}"
            );
        } else {
            assert_ne!(
                r.body["code"], "unauthenticated",
                "{method} {template} is declared without security but asked for a key"
            );
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_answers_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start_with(Backend::Memory, &[("IDV_REFRESH_AFTER_SECONDS", "0")]).await;
    let start = ("POST", "/v1/sessions");
    let get = ("GET", "/v1/sessions/{id}");
    let list = ("GET", "/v1/users/{user_id}/sessions");
    let hook = ("POST", "/v1/webhooks/prove");

    // Started (with client.auth_token), replayed (client.replayed), refused per field.
    let send = |extra: Value| gw.start_prove("user-oa-prove", "mobile", extra);
    let r = send(json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(start.0, start.1, &r);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let replay = |key: &str| {
        gw.send(
            gw.http
                .post(gw.url("/v1/sessions"))
                .bearer_auth(&gw.key)
                .header("idempotency-key", key.to_owned())
                .json(&json!({"provider": "prove", "user_id": "user-oa-prove", "phone_number": "2001004011",
                    "first_name": "Sheilakathryn", "last_name": "Butrimovich", "possession_type": "none"})),
        )
    };
    let first = replay("oa-prove-key").await;
    assert_eq!(first.status, 201, "{}", first.body);
    spec.assert_conforms(start.0, start.1, &first);
    let again = replay("oa-prove-key").await;
    assert_eq!(again.body["client"]["replayed"], true, "{}", again.body);
    spec.assert_conforms(start.0, start.1, &again);
    let r = send(json!({"phone_number": "12"})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(start.0, start.1, &r);

    // Read while pending, then failed (a last_error), and listed.
    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);
    let r = gw.start_prove("user-oa-prove", "mobile", json!({})).await;
    let failed = r.body["id"].as_str().expect("id").to_owned();
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    let r = gw.get(&format!("/v1/sessions/{failed}")).await;
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    spec.assert_conforms(get.0, get.1, &r);
    let r = gw.get("/v1/users/user-oa-prove/sessions").await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);

    // Webhooks: refused, taken, duplicate; and the session with its identity events.
    let verified = first.body["id"].as_str().expect("id").to_owned();
    let identity = gw
        .running
        .app
        .store
        .get_session(&idv::session::SessionId::parse(&verified).unwrap())
        .await
        .unwrap()
        .unwrap()
        .prove()
        .and_then(|p| p.identity_id)
        .expect("enrolled");
    let sent = gw.prove_webhook(&identity, "DISCONNECT", false).await;
    let body = sent["body"].as_str().expect("body");
    let r = gw.deliver_prove(body, Some("Bearer not.a.jwt")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);
    let r = gw.deliver_prove(body, sent["authorization"].as_str()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);
    let r = gw.deliver_prove(body, sent["authorization"].as_str()).await;
    assert_eq!(r.body["duplicate"], true, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);
    // The same token over another body: refused (a token is bound to its body).
    let r = gw.deliver_prove("{}", sent["authorization"].as_str()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);
    // An authentic body of an unknown shape: kept and acknowledged.
    let other = gw.prove_webhook(&identity, "PORT", false).await;
    let r = gw
        .deliver_prove("{}", other["authorization"].as_str())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);
    let r = gw.get(&format!("/v1/sessions/{verified}")).await;
    assert_eq!(
        r.body["identity_events"][0]["type"], "DISCONNECT",
        "{}",
        r.body
    );
    spec.assert_conforms(get.0, get.1, &r);

    // The events of it all, as listed, read and sent.
    let seen = events_conform(&spec, &gw).await;
    for t in [
        "session.pending",
        "session.verified",
        "session.failed",
        "session.reverification_recommended",
    ] {
        assert!(seen.contains(t), "no {t} event among {seen:?}");
    }

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passbase_routes_answer_as_openapi_declares() {
    use super::passbase_support::{act, bodies, deliver, new_identity, start};
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let user = "user-oa-passbase";

    // Waiting for the key: `client.metadata`; then linked; then verified with its evidence.
    let r = start(&gw, user, None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms("POST", "/v1/sessions", &r);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = start(&gw, user, Some("not-a-uuid")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms("POST", "/v1/sessions", &r);

    let key = new_identity(&gw, None).await;
    let link = ("POST", "/v1/sessions/{id}/link");
    let r = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": key}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(link.0, link.1, &r);
    let r = gw
        .post(
            &format!("/v1/sessions/{id}/link"),
            &json!({"identity_access_key": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(link.0, link.1, &r);

    let hook = ("POST", "/v1/webhooks/passbase");
    let report = act(&gw, &key, &["approve", "authenticate"], "none").await;
    for body in bodies(&report) {
        let r = deliver(&gw, &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        spec.assert_conforms(hook.0, hook.1, &r);
    }
    let r = deliver(&gw, "not encrypted").await;
    assert_eq!(r.status, 401, "{}", r.body);
    spec.assert_conforms(hook.0, hook.1, &r);

    let r = gw.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(r.body["status"], "verified", "{}", r.body);
    assert!(r.body["score"].is_number(), "{}", r.body);
    spec.assert_conforms("GET", "/v1/sessions/{id}", &r);
    let r = gw.get(&format!("/v1/users/{user}/sessions")).await;
    spec.assert_conforms("GET", "/v1/users/{user_id}/sessions", &r);

    let reauth = ("GET", "/v1/users/{user_id}/reauthentications");
    let r = gw.get(&format!("/v1/users/{user}/reauthentications")).await;
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.body
    );
    spec.assert_conforms(reauth.0, reauth.1, &r);
    let r = gw
        .get(&format!("/v1/users/{user}/reauthentications?limit=500"))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    spec.assert_conforms(reauth.0, reauth.1, &r);

    let seen = events_conform(&spec, &gw).await;
    for t in [
        "session.created",
        "session.verified",
        "user.reauthenticated",
    ] {
        assert!(seen.contains(t), "no {t} event among {seen:?}");
    }

    gw.stop().await;
}

/// What API Gateway's `$default` route and the local server answer for what openapi.yaml does not
/// declare: a method a declared path does not serve is 405 problem+json with `Allow` naming exactly
/// the methods openapi.yaml declares for it; an unknown path is 404 problem+json. Neither needs
/// an API key (nothing is there to protect), and both match openapi.yaml's Problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_methods_are_405_with_allow_and_unknown_paths_404() {
    let spec = Spec::load();
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let gw = Gateway::start(Backend::Memory).await;
    let paths = spec.doc["paths"].as_object().expect("paths");
    for (template, item) in paths {
        let declared: BTreeSet<String> = item
            .as_object()
            .expect("a path item")
            .keys()
            .filter(|k| HTTP_METHODS.contains(&k.as_str()))
            .map(|k| k.to_ascii_uppercase())
            .collect();
        for method in [
            "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE",
        ] {
            if declared.contains(method) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let r = gw
                .send(
                    gw.http
                        .request(m, gw.url(&sample_path(template)))
                        .bearer_auth(&gw.key),
                )
                .await;
            assert_eq!(r.status, 405, "{method} {template}: {}", r.body);
            let allow: BTreeSet<String> = r
                .headers
                .get(http::header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{method} {template}: no Allow header"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, declared, "{method} {template}: Allow");
            assert_eq!(
                r.headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{method} {template}"
            );
            if method == "HEAD" {
                continue; // no body to check
            }
            assert_eq!(r.body["code"], "method_not_allowed", "{method} {template}");
            let mut errors = Vec::new();
            spec.check(&problem, &r.body, "$", &mut errors);
            assert!(errors.is_empty(), "{method} {template}: {errors:?}");
        }
    }
    for path in [
        "/v1/nothing",
        "/v1/sessions/ses_x/delete",
        "/",
        "/v2/tokens",
    ] {
        let r = gw.send(gw.http.post(gw.url(path)).json(&json!({}))).await;
        assert_eq!(r.status, 404, "POST {path}: {}", r.body);
        assert_eq!(r.body["code"], "not_found", "POST {path}");
        let mut errors = Vec::new();
        spec.check(&problem, &r.body, "$", &mut errors);
        assert!(errors.is_empty(), "POST {path}: {errors:?}");
    }
    gw.stop().await;
}

// ------------------------------------------------------------------------------------------
// Outbound events: the endpoints API, the events API, and what is sent
// ------------------------------------------------------------------------------------------

/// A URL the local server takes (plain `http` to loopback) where nothing listens: deliveries
/// to it fail at once with `could not connect`, and are recorded as attempts.
const DEAD_HOOK: &str = "http://127.0.0.1:9/hook";

async fn send_as(gw: &Gateway, key: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let req = gw
        .http
        .request(http_method(method), gw.url(path))
        .bearer_auth(key);
    gw.send(match body {
        Some(b) => req.json(b),
        None => req,
    })
    .await
}

/// The schema openapi.yaml's `webhooks` section declares for the body of an event of this type.
fn webhook_schema<'a>(spec: &'a Spec, event_type: &str) -> &'a Value {
    let body = &spec.doc["webhooks"][event_type]["post"]["requestBody"];
    let schema = &body["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "openapi.yaml: no webhooks entry with a JSON body for {event_type}"
    );
    schema
}

/// Every event of the tenant so far (committed changes pumped into events first) answers as
/// openapi.yaml declares: the listing page by page, each event with its deliveries, and each
/// body exactly as it is sent against the `webhooks` entry of its type. Answers the types seen.
async fn events_conform(spec: &Spec, gw: &Gateway) -> BTreeSet<String> {
    gw.running.pump_events().await.expect("events pumped");
    let mut seen = BTreeSet::new();
    let mut path = "/v1/events?limit=3".to_owned();
    loop {
        let page = gw.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        spec.assert_conforms("GET", "/v1/events", &page);
        for item in page.body["data"].as_array().expect("data") {
            let id = item["id"].as_str().expect("an event id");
            let r = gw.get(&format!("/v1/events/{id}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            spec.assert_conforms("GET", "/v1/events/{id}", &r);
            let (event, _) = gw
                .running
                .app
                .store
                .get_event(idv_tests::TENANT, id)
                .await
                .expect("store")
                .expect("the event is stored");
            let sent: Value = serde_json::from_str(&event.body).expect("a JSON body");
            let t = event.event_type.as_str();
            assert_eq!(sent["data"], item["data"], "the API shows what was sent");
            let mut errors = Vec::new();
            spec.check(webhook_schema(spec, t), &sent, "$", &mut errors);
            assert!(
                errors.is_empty(),
                "a {t} body openapi.yaml's webhooks section does not allow:\n  {}\nbody: {sent:#}",
                errors.join("\n  ")
            );
            seen.insert(t.to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/events?limit=3&cursor={c}"),
            None => break,
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let key = gw.key.clone();
    let create = ("POST", "/v1/endpoints");
    let one = "/v1/endpoints/{id}";
    let rotate = ("POST", "/v1/endpoints/{id}/rotate_secret");

    // Created, with its secret shown this once.
    let r = gw
        .post(
            "/v1/endpoints",
            &json!({"url": DEAD_HOOK, "event_types": ["session.created", "session.canceled"], "description": "oa"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms(create.0, create.1, &r);
    assert!(
        r.body["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{}",
        r.body
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/endpoints/{id}");

    // Refused, naming the field: a URL the guard refuses, an unknown event type, an unknown
    // field, no URL; and a body that is not JSON.
    for (body, field, code) in [
        (json!({"url": "ftp://127.0.0.1/x"}), "url", "invalid_url"),
        (json!({"url": "http://10.0.0.1/x"}), "url", "invalid_url"),
        (
            json!({"url": DEAD_HOOK, "event_types": ["session.approved"]}),
            "event_types",
            "invalid_value",
        ),
        (
            json!({"url": DEAD_HOOK, "secret": "x"}),
            "secret",
            "unknown_field",
        ),
        (json!({"description": "no url"}), "url", "required"),
    ] {
        let r = gw.post("/v1/endpoints", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["code"], code, "{body}: {}", r.body);
        spec.assert_conforms(create.0, create.1, &r);
    }
    let r = gw
        .send(
            gw.http
                .post(gw.url("/v1/endpoints"))
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body("url=x"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    spec.assert_conforms(create.0, create.1, &r);

    // Read and listed, never with the secret.
    let r = gw.get("/v1/endpoints").await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms("GET", "/v1/endpoints", &r);
    assert!(r.body["data"][0].get("secret").is_none(), "{}", r.body);
    let r = gw.get(&path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms("GET", one, &r);
    assert!(r.body.get("secret").is_none(), "{}", r.body);

    // Changed: disabled, enabled again, refused per field.
    let r = send_as(&gw, &key, "PATCH", &path, Some(&json!({"enabled": false}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["disabled_reason"], "disabled_by_app", "{}", r.body);
    spec.assert_conforms("PATCH", one, &r);
    let r = send_as(
        &gw,
        &key,
        "PATCH",
        &path,
        Some(&json!({"enabled": true, "description": null, "event_types": null})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["disabled_reason"], Value::Null, "{}", r.body);
    spec.assert_conforms("PATCH", one, &r);
    let r = send_as(
        &gw,
        &key,
        "PATCH",
        &path,
        Some(&json!({"enabled": "yes", "colour": 1})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );
    spec.assert_conforms("PATCH", one, &r);

    // Rotated: a new secret, the previous one signing for 24 hours more.
    let r = send_as(&gw, &key, rotate.0, &format!("{path}/rotate_secret"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(rotate.0, rotate.1, &r);
    assert!(
        r.body["previous_secret_expires_at"].is_string(),
        "{}",
        r.body
    );

    // Another tenant's endpoint does not exist for it, whatever the method.
    let other = gw.other_key.clone();
    for (method, template, p, body) in [
        ("GET", one, path.clone(), None),
        ("PATCH", one, path.clone(), Some(json!({"enabled": false}))),
        ("DELETE", one, path.clone(), None),
        (rotate.0, rotate.1, format!("{path}/rotate_secret"), None),
    ] {
        let r = send_as(&gw, &other, method, &p, body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {p} as another tenant: {}", r.body);
        spec.assert_conforms(method, template, &r);
    }
    let r = gw.get(&path).await;
    assert_eq!(
        r.body["enabled"], true,
        "untouched by the other tenant: {}",
        r.body
    );
    let r = send_as(&gw, &other, "GET", "/v1/endpoints", None).await;
    assert_eq!(r.body["data"], json!([]), "{}", r.body);

    // A method the path does not serve: 405 with Allow.
    let r = send_as(&gw, &key, "PUT", &path, Some(&json!({}))).await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("DELETE, GET, PATCH"),
        "{}",
        r.body
    );
    let mut errors = Vec::new();
    spec.check(
        &json!({"$ref": "#/components/schemas/Problem"}),
        &r.body,
        "$",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");

    // At most 10 per tenant: the 11th is a conflict, and creates nothing.
    for n in 2..=10 {
        let r = gw
            .post(
                "/v1/endpoints",
                &json!({"url": format!("{DEAD_HOOK}/{n}"), "enabled": false}),
            )
            .await;
        assert_eq!(r.status, 201, "endpoint {n}: {}", r.body);
        spec.assert_conforms(create.0, create.1, &r);
    }
    let r = gw
        .post("/v1/endpoints", &json!({"url": format!("{DEAD_HOOK}/11")}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "conflict", "{}", r.body);
    spec.assert_conforms(create.0, create.1, &r);
    let r = gw.get("/v1/endpoints").await;
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(10),
        "{}",
        r.body
    );
    spec.assert_conforms("GET", "/v1/endpoints", &r);

    // Deleted: 204 without a body, then not found.
    let r = send_as(&gw, &key, "DELETE", &path, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    spec.assert_conforms("DELETE", one, &r);
    for method in ["GET", "DELETE"] {
        let r = send_as(&gw, &key, method, &path, None).await;
        assert_eq!(r.status, 404, "{method} after delete: {}", r.body);
        spec.assert_conforms(method, one, &r);
    }
    // An id of another shape is simply not found.
    let r = gw.get("/v1/endpoints/not-an-endpoint").await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms("GET", one, &r);

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_answer_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Memory).await;
    let key = gw.key.clone();
    let list = ("GET", "/v1/events");
    let one = ("GET", "/v1/events/{id}");
    let resend = ("POST", "/v1/events/{id}/resend");

    // An endpoint for creations only, so that events have deliveries (which fail: nothing
    // listens), and one added later for every type.
    let r = gw
        .post(
            "/v1/endpoints",
            &json!({"url": DEAD_HOOK, "event_types": ["session.created"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let creations = r.body["id"].as_str().expect("id").to_owned();

    // Events of several types: created, canceled (nevis), verified (Authento's webhook).
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "u1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let session = r.body["id"].as_str().expect("id").to_owned();
    let r = gw
        .post(&format!("/v1/sessions/{session}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    gw.issue_token("user-oa-events", "BASIC").await;
    gw.authento("user-oa-events", "BASIC", "approve", true)
        .await;
    let seen = events_conform(&spec, &gw).await;
    for t in ["session.created", "session.canceled", "session.verified"] {
        assert!(seen.contains(t), "no {t} event among {seen:?}");
    }

    // Filtered by type and session, a page of one with a cursor to the next.
    let r = gw
        .get(&format!(
            "/v1/events?type=session.created&session_id={session}&limit=1"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    let data = r.body["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{}", r.body);
    assert_eq!(data[0]["type"], "session.created", "{}", r.body);
    let created = data[0]["id"].as_str().expect("id").to_owned();
    let r = gw.get("/v1/events?limit=1").await;
    assert!(r.body["next_cursor"].is_string(), "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);

    // Refused per parameter.
    for (query, field) in [
        ("type=session.approved", "type"),
        ("session_id=nope", "session_id"),
        ("limit=0", "limit"),
        ("cursor=djF8bm90LWEtY3Vyc29y", "cursor"),
    ] {
        let r = gw.get(&format!("/v1/events?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{query}: {}", r.body);
        spec.assert_conforms(list.0, list.1, &r);
    }

    // The creation's delivery to the dead endpoint: attempted, failed, due again.
    let r = gw.get(&format!("/v1/events/{created}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    spec.assert_conforms(one.0, one.1, &r);
    let delivery = &r.body["deliveries"][0];
    assert_eq!(delivery["endpoint_id"], creations.as_str(), "{}", r.body);
    assert_eq!(delivery["state"], "pending", "{}", r.body);
    assert!(delivery["attempts"][0]["error"].is_string(), "{}", r.body);

    // Resent: without a body, with `{}`, to one endpoint (one added since included).
    let later = gw.post("/v1/endpoints", &json!({"url": DEAD_HOOK})).await;
    assert_eq!(later.status, 201, "{}", later.body);
    let later = later.body["id"].as_str().expect("id").to_owned();
    let resend_path = format!("/v1/events/{created}/resend");
    let r = send_as(&gw, &key, "POST", &resend_path, None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    spec.assert_conforms(resend.0, resend.1, &r);
    assert_eq!(
        r.body["deliveries"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.body
    );
    for body in [
        json!({}),
        json!({"endpoint_id": creations}),
        json!({"endpoint_id": null}),
    ] {
        let r = gw.post(&resend_path, &body).await;
        assert_eq!(r.status, 202, "{body}: {}", r.body);
        spec.assert_conforms(resend.0, resend.1, &r);
    }
    for (body, field) in [
        (
            json!({"endpoint_id": "ep_aaaaaaaaaaaaaaaaaaaaaaaaaa"}),
            "endpoint_id",
        ),
        (json!({"endpoint_id": 7}), "endpoint_id"),
        (json!({"endpoint": later}), "endpoint"),
    ] {
        let r = gw.post(&resend_path, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.body);
        spec.assert_conforms(resend.0, resend.1, &r);
    }
    let r = gw
        .send(
            gw.http
                .post(gw.url(&resend_path))
                .bearer_auth(&key)
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.body);
    spec.assert_conforms(resend.0, resend.1, &r);

    // Another tenant's event, and an id that is none: not found.
    let other = gw.other_key.clone();
    let r = send_as(&gw, &other, "GET", &format!("/v1/events/{created}"), None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms(one.0, one.1, &r);
    let r = send_as(&gw, &other, "POST", &resend_path, Some(&json!({}))).await;
    assert_eq!(r.status, 404, "{}", r.body);
    spec.assert_conforms(resend.0, resend.1, &r);
    let r = send_as(&gw, &other, "GET", "/v1/events", None).await;
    assert_eq!(r.body["data"], json!([]), "{}", r.body);
    spec.assert_conforms(list.0, list.1, &r);
    for p in [
        "/v1/events/evt_0000000000000000000000000a",
        "/v1/events/nope",
    ] {
        let r = gw.get(p).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
        spec.assert_conforms(one.0, one.1, &r);
    }

    // What the resends did, read back: attempts recorded on both endpoints.
    events_conform(&spec, &gw).await;
    gw.stop().await;
}

/// An endpoint id of any other shape (here: longer than a DynamoDB key may be) is not found on
/// every route that takes one, and in a resend's `endpoint_id`: bad input, never a retryable
/// store error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_ids_of_another_shape_are_not_found_on_dynamodb() {
    let spec = Spec::load();
    let gw = Gateway::start(Backend::Dynamo).await;
    let key = gw.key.clone();
    let long = format!("ep_{}", "a".repeat(1500));
    let path = format!("/v1/endpoints/{long}");
    let one = "/v1/endpoints/{id}";
    for (method, template, p, body) in [
        ("GET", one, path.clone(), None),
        ("PATCH", one, path.clone(), Some(json!({}))),
        ("DELETE", one, path.clone(), None),
        (
            "POST",
            "/v1/endpoints/{id}/rotate_secret",
            format!("{path}/rotate_secret"),
            None,
        ),
    ] {
        let r = send_as(&gw, &key, method, &p, body.as_ref()).await;
        assert_eq!(r.status, 404, "{method} {template}: {}", r.body);
        spec.assert_conforms(method, template, &r);
    }
    let r = gw
        .post(
            "/v1/sessions",
            &json!({"provider": "nevis", "user_id": "u1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    gw.running.pump_events().await.expect("events pumped");
    let r = gw.get("/v1/events").await;
    let event = r.body["data"][0]["id"]
        .as_str()
        .expect("an event")
        .to_owned();
    let r = gw
        .post(
            &format!("/v1/events/{event}/resend"),
            &json!({"endpoint_id": long}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "endpoint_id", "{}", r.body);
    spec.assert_conforms("POST", "/v1/events/{id}/resend", &r);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prove_unify_answers_as_openapi_declares() {
    let spec = Spec::load();
    let gw = Gateway::start_with(
        Backend::Memory,
        &[
            ("IDV_PROVE_FLOW", "unify"),
            ("IDV_REFRESH_AFTER_SECONDS", "0"),
        ],
    )
    .await;
    let body = |possession: &str, phone: &str| {
        json!({"provider": "prove", "user_id": "user-oa-unify", "phone_number": phone,
               "possession_type": possession})
    };
    let r = gw
        .post("/v1/sessions", &body("mobile", "+12001004014"))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    spec.assert_conforms("POST", "/v1/sessions", &r);
    gw.prove_authenticate(r.body["client"]["auth_token"].as_str().unwrap(), "failed")
        .await;
    let g = gw
        .get(&format!("/v1/sessions/{}", r.body["id"].as_str().unwrap()))
        .await;
    assert_eq!(g.body["last_error"]["provider_code"], "false", "{}", g.body);
    spec.assert_conforms("GET", "/v1/sessions/{id}", &g);

    let bind = ("POST", "/v1/sessions/{id}/bind");
    let r = gw.post("/v1/sessions", &body("none", "+2001004026")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/v1/sessions/{}/bind", r.body["id"].as_str().unwrap());
    for (body, status) in [
        (json!({"phone_number": 1}), 400),
        (json!({"phone_number": "+2001004026"}), 200),
    ] {
        let b = gw.post(&path, &body).await;
        assert_eq!(b.status, status, "{}", b.body);
        spec.assert_conforms(bind.0, bind.1, &b);
    }
    let m = gw
        .post("/v1/sessions", &body("mobile", "+12001004014"))
        .await;
    let b = gw
        .post(
            &format!("/v1/sessions/{}/bind", m.body["id"].as_str().unwrap()),
            &json!({"phone_number": "+12001004014"}),
        )
        .await;
    assert_eq!(b.status, 409, "{}", b.body);
    spec.assert_conforms(bind.0, bind.1, &b);
    gw.stop().await;
}
