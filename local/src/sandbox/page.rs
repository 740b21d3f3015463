//! The frame of every simulator page: `lang`, a viewport for phones, a title, a banner saying
//! it is a sandbox, one `main` landmark and one stylesheet, so the pages pass an accessibility
//! check (axe, WCAG 2.1 A/AA) and read at phone width. The pages' own markup stays theirs.

const STYLE: &str = include_str!("page.css");

/// A whole HTML document: `title` goes to `<title>` and the banner, `main` is trusted markup
/// (callers escape what they interpolate).
pub fn document(provider: &str, title: &str, main: &str) -> String {
    let provider = super::html_escape(provider);
    let title = super::html_escape(title);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n\
         <header><p>{provider}<span class=\"tag\">sandbox: simulated by idv-local</span></p></header>\n\
         <main>\n{main}</main></body></html>"
    )
}

/// One choice on a page: a form posting `action` (and the hidden fields), its button, and a
/// line on what the real provider does there.
pub fn step(hidden: &[(&str, &str)], action: &str, extra: &str, label: &str, note: &str) -> String {
    let hidden: String = hidden
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                super::html_escape(value)
            )
        })
        .collect();
    // No `action`: the form posts back to the page's own URL.
    let target = if action.is_empty() {
        String::new()
    } else {
        format!(" action=\"{action}\"")
    };
    format!(
        "<div class=\"step\"><form method=\"post\"{target}>{hidden}{extra}\
         <button type=\"submit\">{label}</button></form><p>{note}</p></div>\n"
    )
}
