//! The documentation stays true and self-contained:
//!
//! - the settings table of `docs/deploy.md` lists exactly the `IDV_*` variables the code reads
//!   (`shared/src`, `local/src`): it can neither miss a setting nor invent one;
//! - no file of the repository points outside it (to a sibling `shared` folder or a machine's
//!   own paths): a user's clone has only the repository;
//! - every relative link of every Markdown file resolves to a file of the repository, and to a
//!   heading of it when the link names one;
//! - every citation of a manual page anywhere in the repository (`docs/api.md#errors` in a code
//!   comment) names a page that exists and a heading it has;
//! - every repository path the Markdown files name in a code span (`shared/src/flows/start.rs`)
//!   exists: code moves, and its description must follow.
//!
//! Files are read relative to the workspace root, as `openapi.rs` reads `openapi.yaml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Folders that are not the repository's files: build output, version control, local caches.
const SKIPPED_DIRS: [&str; 6] = [
    "target",
    ".git",
    ".aws-sam",
    ".cache",
    "node_modules",
    "corpus",
];

/// Every file of the repository under `dir`, in a stable order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                out.extend(files_under(&path));
            }
        } else if path.is_file() && name != ".git" {
            out.push(path);
        }
    }
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

// ------------------------------------------------------------------------------------------
// Settings
// ------------------------------------------------------------------------------------------

fn is_setting_name(s: &str) -> bool {
    s.len() > "IDV_".len()
        && s.starts_with("IDV_")
        && s.bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

/// Every string literal that is exactly an `IDV_*` name, in the Rust sources of `dirs`.
fn settings_in_code(dirs: &[&str]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for dir in dirs {
        for file in files_under(&root().join(dir)) {
            if file.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let text = read(&file);
            for (i, _) in text.match_indices("\"IDV_") {
                let rest = &text[i + 1..];
                if let Some(end) = rest.find('"')
                    && is_setting_name(&rest[..end])
                {
                    found.insert(rest[..end].to_owned());
                }
            }
        }
    }
    found
}

/// The rows of the table under `heading` (up to the next heading of the same level or higher).
fn table_rows<'a>(markdown: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.bytes().take_while(|&c| c == b'#').count();
    let mut rows = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        let hashes = line.bytes().take_while(|&c| c == b'#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            if inside && hashes <= level {
                break;
            }
            inside |= line.trim_end() == heading;
            continue;
        }
        if inside && line.starts_with('|') {
            rows.push(line);
        }
    }
    rows
}

/// The `IDV_*` names in the first column of docs/deploy.md's settings table.
fn settings_in_docs() -> BTreeSet<String> {
    let deploy = read(&root().join("docs/deploy.md"));
    let mut found = BTreeSet::new();
    for row in table_rows(&deploy, "## Settings") {
        let first = row.trim_start_matches('|').split('|').next().unwrap_or("");
        for name in first.split('`') {
            if is_setting_name(name.trim()) {
                found.insert(name.trim().to_owned());
            }
        }
    }
    found
}

#[test]
fn the_settings_table_lists_exactly_the_variables_the_code_reads() {
    let code = settings_in_code(&["shared/src", "local/src"]);
    let docs = settings_in_docs();
    // Guards against a parser that finds nothing on either side (and so "agrees").
    assert!(
        code.len() >= 20,
        "only {} IDV_* names in the code",
        code.len()
    );
    assert!(
        docs.len() >= 20,
        "only {} IDV_* names in docs/deploy.md's settings table",
        docs.len()
    );
    let missing: Vec<_> = code.difference(&docs).collect();
    let invented: Vec<_> = docs.difference(&code).collect();
    assert!(
        missing.is_empty() && invented.is_empty(),
        "docs/deploy.md, section Settings: read by the code but not in the table: {missing:?}; \
         in the table but read nowhere in shared/src or local/src: {invented:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Nothing points outside the repository
// ------------------------------------------------------------------------------------------

#[test]
fn no_file_refers_to_anything_outside_the_repository() {
    // Built here rather than written out, so that this file does not match itself.
    let needles = [["..", "shared"].join("/"), ["", "work", "shared"].join("/")];
    let mut hits = Vec::new();
    let files = files_under(&root());
    assert!(files.len() > 50, "only {} files found", files.len());
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    hits.push(format!("{}:{}: {needle}", relative(&file), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "files refer to places a clone does not have:\n{}",
        hits.join("\n")
    );
}

// ------------------------------------------------------------------------------------------
// Links and citations
// ------------------------------------------------------------------------------------------

/// The lines of a Markdown text outside fenced code blocks, with their numbers.
fn prose_lines(markdown: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((n + 1, line));
        }
    }
    out
}

/// A line without its inline code spans (a link inside backticks is not a link).
fn without_code_spans(line: &str) -> String {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The targets of the inline links (`[text](target "title")`) and reference definitions
/// (`[name]: target`) of a line.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_owned());
        rest = &rest[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some(i) = trimmed.find("]:")
        && let Some(target) = trimmed[i + 2..].split_whitespace().next()
    {
        out.push(target.to_owned());
    }
    out
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`, ...).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(markdown) {
        let hashes = line.bytes().take_while(|&c| c == b'#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// Why `target` (relative to the folder `from`) does not resolve, if it does not.
fn broken(from: &Path, target: &str, current: &Path) -> Option<String> {
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        current.to_path_buf()
    } else {
        from.join(path)
    };
    let Ok(file) = file.canonicalize() else {
        return Some("no such file".into());
    };
    if !file.starts_with(root()) {
        return Some("outside the repository".into());
    }
    if anchor.is_empty() || file.extension().and_then(|e| e.to_str()) != Some("md") {
        return None;
    }
    if anchors(&read(&file)).contains(anchor) {
        None
    } else {
        Some(format!("{} has no heading #{anchor}", relative(&file)))
    }
}

fn is_external(target: &str) -> bool {
    target.is_empty() || target.contains("://") || target.starts_with("mailto:")
}

#[test]
fn every_relative_link_of_the_markdown_files_resolves() {
    let pages: Vec<PathBuf> = files_under(&root())
        .into_iter()
        .filter(|f| f.extension().and_then(|e| e.to_str()) == Some("md"))
        .collect();
    for required in [
        "README.md",
        "RELIABILITY.md",
        "docs/api.md",
        "docs/deploy.md",
    ] {
        assert!(
            pages.contains(&root().join(required)),
            "{required} is missing"
        );
    }
    let mut checked = 0;
    let mut broken_links = Vec::new();
    for page in &pages {
        let text = read(page);
        let dir = page.parent().expect("a folder");
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if is_external(&target) {
                    continue;
                }
                checked += 1;
                if let Some(why) = broken(dir, &target, page) {
                    broken_links.push(format!("{}:{n}: ({target}): {why}", relative(page)));
                }
            }
        }
    }
    assert!(checked >= 50, "only {checked} relative links found");
    assert!(
        broken_links.is_empty(),
        "broken links:\n{}",
        broken_links.join("\n")
    );
}

/// `docs/<page>.md` with its `#anchor`, wherever a file of the repository names one.
fn citations(text: &str) -> Vec<String> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/._-#".contains(c);
    let mut out = Vec::new();
    for (i, _) in text.match_indices("docs/") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
            continue; // part of a longer path (`shared/docs/...`, `../docs/...` are links)
        }
        let cited: String = text[i..].chars().take_while(|&c| path_char(c)).collect();
        let cited = cited.trim_end_matches(['.', '#']);
        let page = cited.split('#').next().unwrap_or("");
        if page.ends_with(".md") {
            out.push(cited.to_owned());
        }
    }
    out
}

#[test]
fn every_citation_of_a_manual_page_names_a_page_and_a_heading_it_has() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in files_under(&root()) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for cited in citations(&text) {
            checked += 1;
            if let Some(why) = broken(&root(), &cited, &file) {
                wrong.push(format!("{}: {cited}: {why}", relative(&file)));
            }
        }
    }
    assert!(checked >= 5, "only {checked} citations found");
    assert!(
        wrong.is_empty(),
        "citations of pages or sections that do not exist:\n{}",
        wrong.join("\n")
    );
}

/// Top folders whose paths the docs name; a span with a placeholder (`functions/<name>/`,
/// `{base}`, `*`, `...`) names a pattern, not a path.
const PATH_ROOTS: [&str; 9] = [
    "shared/",
    "local/",
    "functions/",
    "tests/",
    "scripts/",
    "bench/",
    "events/",
    "docs/",
    ".ci/",
];

/// The repository paths named in a line's code spans, without a `:line` suffix or `#anchor`.
fn named_paths(line: &str) -> Vec<String> {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, span)| span.trim())
        .filter(|span| PATH_ROOTS.iter().any(|r| span.starts_with(r)))
        .filter(|span| !span.contains(['<', '{', '*', ' ', '[', '|']) && !span.contains("..."))
        .map(|span| {
            let span = span.split('#').next().unwrap_or(span);
            span.split(':').next().unwrap_or(span).to_owned()
        })
        .collect()
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut checked = 0;
    let mut missing = Vec::new();
    for file in files_under(&root()) {
        if file.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        for (n, line) in prose_lines(&read(&file)) {
            for path in named_paths(line) {
                checked += 1;
                if !root().join(&path).exists() {
                    missing.push(format!("{}:{n}: {path}", relative(&file)));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} paths found");
    assert!(
        missing.is_empty(),
        "the docs name paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn headings_become_the_anchors_github_makes() {
    let md = "# The API\n## Errors\n### `POST /v1/tokens`\n```\n# not a heading\n```\n## Errors\n";
    let got = anchors(md);
    let want: BTreeSet<String> = ["the-api", "errors", "post-v1tokens", "errors-1"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
    assert_eq!(
        link_targets("see [a](../x.md#y \"t\") and `[b](not-a-link)` [c]: z.md"),
        ["../x.md#y"]
    );
    assert_eq!(
        citations("cites docs/api.md#errors. and shared/docs/x.md, docs/deploy.md."),
        ["docs/api.md#errors", "docs/deploy.md"]
    );
    assert_eq!(
        named_paths("`shared/src/a.rs:12`, `functions/<name>/`, `docs/api.md#errors`, `cargo run`"),
        ["shared/src/a.rs", "docs/api.md"]
    );
}
