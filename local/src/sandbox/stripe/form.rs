//! Stripe's v1 parameter encoding: `application/x-www-form-urlencoded` pairs whose keys nest with
//! brackets (`metadata[user_id]=42`, `options[document][require_matching_selfie]=true`) and whose
//! arrays come with indices (`expand[0]=x`, what the SDKs send) or empty brackets (`expand[]=x`,
//! what the curl examples use). Brackets may arrive percent-encoded (`expand%5B0%5D`), as
//! stripe-python sends them in query strings.

/// One parsed parameter: a value, or a bracketed group in the order it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Value(String),
    /// `(key, node)` pairs; an empty-bracket element has the key `""`.
    Group(Vec<(String, Node)>),
}

/// Why a request's parameters cannot be read; `param` is the offending key as Stripe names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    pub param: String,
    pub message: String,
}

fn invalid(param: &str, message: impl Into<String>) -> FormError {
    FormError {
        param: param.to_owned(),
        message: message.into(),
    }
}

/// The parameters of a body or a query string, as one top-level group.
pub fn parse(raw: &[u8]) -> Result<Vec<(String, Node)>, FormError> {
    let mut root: Vec<(String, Node)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw) {
        let path = split_key(&key)?;
        insert(&mut root, &path, value.into_owned(), &key)?;
    }
    Ok(root)
}

/// `a[b][]` -> `["a", "b", ""]`.
fn split_key(key: &str) -> Result<Vec<String>, FormError> {
    let (name, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if name.is_empty() || name.contains(']') {
        return Err(invalid(key, format!("Invalid parameter name: {key}")));
    }
    let mut path = vec![name.to_owned()];
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return Err(invalid(key, format!("Invalid parameter name: {key}")));
        };
        let Some(end) = inner.find(']') else {
            return Err(invalid(key, format!("Invalid parameter name: {key}")));
        };
        let segment = &inner[..end];
        if segment.contains('[') {
            return Err(invalid(key, format!("Invalid parameter name: {key}")));
        }
        path.push(segment.to_owned());
        rest = &inner[end + 1..];
    }
    // ASSUMPTION: `[]` may only close a key (arrays of objects are not needed by Identity).
    if path[..path.len() - 1].iter().skip(1).any(String::is_empty) {
        return Err(invalid(key, format!("Invalid parameter name: {key}")));
    }
    Ok(path)
}

fn insert(
    group: &mut Vec<(String, Node)>,
    path: &[String],
    value: String,
    key: &str,
) -> Result<(), FormError> {
    let (head, tail) = path.split_first().expect("a key has a name");
    if tail.is_empty() {
        // ASSUMPTION: a scalar given twice (or as both a value and a group) is refused rather
        // than one of them silently winning.
        if !head.is_empty() && group.iter().any(|(k, _)| k == head) {
            return Err(invalid(key, format!("Received {key} more than once")));
        }
        group.push((head.clone(), Node::Value(value)));
        return Ok(());
    }
    let position = group.iter().position(|(k, _)| k == head);
    let index = match position {
        Some(i) => i,
        None => {
            group.push((head.clone(), Node::Group(Vec::new())));
            group.len() - 1
        }
    };
    match &mut group[index].1 {
        Node::Group(children) => insert(children, tail, value, key),
        Node::Value(_) => Err(invalid(key, format!("Received {key} more than once"))),
    }
}

impl Node {
    pub fn as_value(&self) -> Option<&str> {
        match self {
            Node::Value(v) => Some(v),
            Node::Group(_) => None,
        }
    }

    /// An array parameter: `a[]=x&a[]=y`, `a[0]=x&a[1]=y` (ordered by index), or `a=` (empty:
    /// Stripe's way of clearing a list). `None` when the shape is no list of values.
    pub fn as_list(&self) -> Option<Vec<String>> {
        match self {
            Node::Value(v) if v.is_empty() => Some(Vec::new()),
            Node::Value(_) => None,
            Node::Group(children) => {
                let mut indexed = Vec::with_capacity(children.len());
                let all_empty = children.iter().all(|(k, _)| k.is_empty());
                for (i, (k, node)) in children.iter().enumerate() {
                    let position = if all_empty {
                        i
                    } else {
                        k.parse::<usize>().ok()?
                    };
                    indexed.push((position, node.as_value()?.to_owned()));
                }
                indexed.sort_by_key(|(p, _)| *p);
                Some(indexed.into_iter().map(|(_, v)| v).collect())
            }
        }
    }

    /// The parameters as JSON, lists as arrays and groups as objects with sorted keys: equal for
    /// two requests that mean the same (the idempotency layer compares these).
    pub fn canonical(&self) -> serde_json::Value {
        match self {
            Node::Value(v) => serde_json::Value::String(v.clone()),
            Node::Group(children) => {
                if !children.is_empty()
                    && let Some(list) = self.as_list()
                {
                    return serde_json::json!(list);
                }
                let map: std::collections::BTreeMap<String, serde_json::Value> = children
                    .iter()
                    .map(|(k, n)| (k.clone(), n.canonical()))
                    .collect();
                serde_json::json!(map)
            }
        }
    }
}

/// A whole parameter set as canonical JSON.
pub fn canonical(params: &[(String, Node)]) -> serde_json::Value {
    Node::Group(params.to_vec()).canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(params: &'a [(String, Node)], key: &str) -> &'a Node {
        &params.iter().find(|(k, _)| k == key).unwrap().1
    }

    #[test]
    fn brackets_nest_and_arrays_come_indexed_or_empty() {
        let p = parse(
            b"type=document&metadata[user_id]=42&options[document][allowed_types][1]=id_card\
              &options[document][allowed_types][0]=passport&expand[]=a&expand[]=b",
        )
        .unwrap();
        assert_eq!(get(&p, "type").as_value(), Some("document"));
        let Node::Group(options) = get(&p, "options") else {
            panic!()
        };
        let Node::Group(document) = get(options, "document") else {
            panic!()
        };
        assert_eq!(
            get(document, "allowed_types").as_list().unwrap(),
            ["passport", "id_card"]
        );
        assert_eq!(get(&p, "expand").as_list().unwrap(), ["a", "b"]);
    }

    #[test]
    fn percent_encoded_brackets_mean_the_same_and_compare_equal() {
        let encoded = parse(b"expand%5B0%5D=verified_outputs&metadata%5Bk%5D=v%20w").unwrap();
        let plain = parse(b"metadata[k]=v+w&expand[]=verified_outputs").unwrap();
        assert_eq!(canonical(&encoded), canonical(&plain));
        assert_ne!(
            canonical(&plain),
            canonical(&parse(b"metadata[k]=v+w&expand[]=other").unwrap())
        );
    }

    #[test]
    fn malformed_and_repeated_keys_are_refused() {
        for raw in [
            &b"a[b=1"[..],
            b"[a]=1",
            b"a]=1",
            b"a[b]c=1",
            b"a[][b]=1",
            b"type=a&type=b",
            b"metadata=x&metadata[k]=v",
            b"metadata[k]=v&metadata=x",
        ] {
            assert!(parse(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn an_empty_value_is_an_empty_list_and_mixed_keys_are_no_list() {
        let p = parse(b"expand=&x[0]=a&x[k]=b").unwrap();
        assert_eq!(get(&p, "expand").as_list(), Some(vec![]));
        assert_eq!(get(&p, "x").as_list(), None);
    }
}
