//! Escaping text for HTML and XML (the Control UI's injected attributes and error pages, the
//! launchd plist and the Windows task definition): the five special characters, for text
//! content and quoted attribute values alike. `&#39;` rather than `&apos;`: both languages read it.

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
