//! Reading a request's parameters the way Stripe validates them: unknown names, types, limits
//! (metadata: 50 keys, keys up to 40 characters, values up to 500), and the fields create and
//! update share.

use super::api::{ApiError, invalid_param, unknown};
use super::form::Node;
use super::session::{Expand, Session};

const METADATA_KEYS: usize = 50;
const METADATA_KEY_LEN: usize = 40;
const METADATA_VALUE_LEN: usize = 500;
const DOCUMENT_TYPES: [&str; 3] = ["driving_license", "id_card", "passport"];

pub(super) fn find<'a>(params: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    params.iter().find(|(k, _)| k == key).map(|(_, n)| n)
}

pub(super) fn only(
    params: &[(String, Node)],
    allowed: &[&str],
    prefix: &str,
) -> Result<(), ApiError> {
    for (k, _) in params {
        if !allowed.contains(&k.as_str()) {
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}[{k}]")
            };
            return Err(unknown(&name));
        }
    }
    Ok(())
}

pub(super) fn text<'a>(node: &'a Node, param: &str) -> Result<&'a str, ApiError> {
    node.as_value().ok_or_else(|| {
        invalid_param(
            param,
            format!("Invalid {param}: must be a string, not a hash"),
        )
    })
}

/// An optional string: `""` unsets it.
pub(super) fn optional_text(
    node: &Node,
    param: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let v = text(node, param)?;
    if v.chars().count() > max {
        return Err(invalid_param(
            param,
            format!("Invalid {param}: must be at most {max} characters"),
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

pub(super) fn boolean(node: &Node, param: &str) -> Result<Option<bool>, ApiError> {
    match text(node, param)? {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        other => Err(invalid_param(param, format!("Invalid boolean: {other}"))),
    }
}

pub(super) fn expand(params: &[(String, Node)], prefix: &str) -> Result<Expand, ApiError> {
    let Some(node) = find(params, "expand") else {
        return Ok(Expand::default());
    };
    let paths = node
        .as_list()
        .ok_or_else(|| invalid_param("expand", "Invalid array"))?;
    Expand::parse(&paths, prefix)
        .map_err(|p| invalid_param("expand", format!("This property cannot be expanded ({p}).")))
}

pub(super) fn kind(node: &Node) -> Result<String, ApiError> {
    match text(node, "type")? {
        "" => Err(invalid_param(
            "type",
            "You passed an empty string for 'type'. We assume empty values are an attempt to \
             unset a parameter; however 'type' cannot be unset. You should remove 'type' from \
             your request or supply a non-empty value.",
        )
        .code("parameter_invalid_empty")),
        t @ ("document" | "id_number") => Ok(t.to_owned()),
        _ => Err(invalid_param(
            "type",
            "Invalid type: must be one of document or id_number",
        )),
    }
}

/// `metadata[k]=v` sets, `metadata[k]=` removes, `metadata=` clears.
fn apply_metadata(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.metadata.clear();
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "metadata",
                "Invalid metadata: must be a hash",
            ));
        }
        Node::Group(children) => children,
    };
    for (k, v) in children {
        let param = format!("metadata[{k}]");
        if k.is_empty() {
            return Err(invalid_param(
                "metadata",
                "Invalid metadata: keys must not be empty",
            ));
        }
        if k.chars().count() > METADATA_KEY_LEN {
            return Err(invalid_param(
                &param,
                format!(
                    "Metadata keys can have a maximum length of {METADATA_KEY_LEN} characters."
                ),
            ));
        }
        let Some(v) = v.as_value() else {
            return Err(invalid_param(&param, "Metadata values must be strings."));
        };
        if v.chars().count() > METADATA_VALUE_LEN {
            return Err(invalid_param(
                &param,
                format!(
                    "Metadata values can have a maximum length of {METADATA_VALUE_LEN} characters."
                ),
            ));
        }
        match s.metadata.iter().position(|(key, _)| key == k) {
            Some(i) if v.is_empty() => {
                s.metadata.remove(i);
            }
            Some(i) => s.metadata[i].1 = v.to_owned(),
            None if v.is_empty() => {}
            None => s.metadata.push((k.clone(), v.to_owned())),
        }
    }
    if s.metadata.len() > METADATA_KEYS {
        return Err(invalid_param(
            "metadata",
            format!("Metadata can have at most {METADATA_KEYS} keys."),
        ));
    }
    Ok(())
}

/// `options[document][...]`; `options[document]=` clears.
/// ASSUMPTION: on update, the given fields replace theirs and the others stay.
fn apply_options(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.document_options = None;
            return Ok(());
        }
        Node::Value(_) => return Err(invalid_param("options", "Invalid options: must be a hash")),
        Node::Group(children) => children,
    };
    only(children, &["document"], "options")?;
    let Some(document) = find(children, "document") else {
        return Ok(());
    };
    let fields = match document {
        Node::Value(v) if v.is_empty() => {
            s.document_options = None;
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "options[document]",
                "Invalid options[document]: must be a hash",
            ));
        }
        Node::Group(fields) => fields,
    };
    only(
        fields,
        &[
            "allowed_types",
            "require_id_number",
            "require_live_capture",
            "require_matching_selfie",
        ],
        "options[document]",
    )?;
    let mut d = s.document_options.clone().unwrap_or_default();
    for (k, v) in fields {
        let param = format!("options[document][{k}]");
        match k.as_str() {
            "allowed_types" => {
                let types = v
                    .as_list()
                    .ok_or_else(|| invalid_param(&param, "Invalid array"))?;
                if let Some(bad) = types.iter().find(|t| !DOCUMENT_TYPES.contains(&t.as_str())) {
                    return Err(invalid_param(
                        &param,
                        format!(
                            "Invalid {param}[]: must be one of driving_license, id_card, or passport (got {bad})"
                        ),
                    ));
                }
                d.allowed_types = (!types.is_empty()).then_some(types);
            }
            "require_id_number" => d.require_id_number = boolean(v, &param)?,
            "require_live_capture" => d.require_live_capture = boolean(v, &param)?,
            _ => d.require_matching_selfie = boolean(v, &param)?,
        }
    }
    s.document_options = Some(d);
    Ok(())
}

fn apply_provided_details(s: &mut Session, node: &Node) -> Result<(), ApiError> {
    let children = match node {
        Node::Value(v) if v.is_empty() => {
            s.provided_email = None;
            s.provided_phone = None;
            return Ok(());
        }
        Node::Value(_) => {
            return Err(invalid_param(
                "provided_details",
                "Invalid provided_details: must be a hash",
            ));
        }
        Node::Group(children) => children,
    };
    only(children, &["email", "phone"], "provided_details")?;
    if let Some(email) = find(children, "email") {
        let email = optional_text(email, "provided_details[email]", 800)?;
        if let Some(e) = &email
            && !e
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.ends_with('.'))
        {
            return Err(invalid_param(
                "provided_details[email]",
                format!("Invalid email address: {e}"),
            )
            .code("email_invalid"));
        }
        s.provided_email = email;
    }
    // ASSUMPTION: Stripe's own checks of these are not documented; an email needs `x@y.z` and a
    // phone at most 40 characters.
    if let Some(phone) = find(children, "phone") {
        s.provided_phone = optional_text(phone, "provided_details[phone]", 40)?;
    }
    Ok(())
}

/// The fields create and update share.
pub(super) fn apply_fields(s: &mut Session, params: &[(String, Node)]) -> Result<(), ApiError> {
    if let Some(node) = find(params, "type") {
        s.kind = kind(node)?;
    }
    if let Some(node) = find(params, "metadata") {
        apply_metadata(s, node)?;
    }
    if let Some(node) = find(params, "options") {
        apply_options(s, node)?;
    }
    if let Some(node) = find(params, "provided_details") {
        apply_provided_details(s, node)?;
    }
    Ok(())
}

pub(super) fn integer(node: &Node, param: &str) -> Result<i64, ApiError> {
    text(node, param)?.parse().map_err(|_| {
        invalid_param(
            param,
            format!("Invalid integer: {}", node.as_value().unwrap_or("")),
        )
        .code("parameter_invalid_integer")
    })
}

/// `created=N` or `created[gt|gte|lt|lte]=N`: the bounds as `(min, max)`, inclusive.
pub(super) fn created_range(node: &Node) -> Result<(i64, i64), ApiError> {
    match node {
        Node::Value(_) => {
            let n = integer(node, "created")?;
            Ok((n, n))
        }
        Node::Group(children) => {
            only(children, &["gt", "gte", "lt", "lte"], "created")?;
            let (mut min, mut max) = (i64::MIN, i64::MAX);
            for (k, v) in children {
                let n = integer(v, &format!("created[{k}]"))?;
                match k.as_str() {
                    "gt" => min = min.max(n.saturating_add(1)),
                    "gte" => min = min.max(n),
                    "lt" => max = max.min(n.saturating_sub(1)),
                    _ => max = max.min(n),
                }
            }
            Ok((min, max))
        }
    }
}
