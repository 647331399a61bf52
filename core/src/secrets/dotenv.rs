//! Dotenv text (`.env` files, `secrets store import`): `NAME=value` lines, optional `export `,
//! `#` comments, single quotes literal, double quotes with `\n`/`\r` escapes and values that
//! span lines (PEM keys).

/// One assignment, with the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: String,
    pub line: usize,
}

fn name_and_rest(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let t = t.strip_prefix("export").filter(|r| r.starts_with([' ', '\t'])).map(str::trim_start).unwrap_or(t);
    let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?;
    Some((name, rest.trim_start()))
}

/// Parse dotenv text. Lines that are not assignments are skipped; an unterminated quote takes
/// the rest of the text.
pub fn parse(text: &str) -> Vec<Assignment> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let Some((name, rest)) = name_and_rest(lines[i]) else {
            i += 1;
            continue;
        };
        i += 1;
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let mut body = rest[1..].to_string();
                loop {
                    if let Some(end) = closing_quote(&body, q) {
                        body.truncate(end);
                        break;
                    }
                    match lines.get(i) {
                        Some(next) => {
                            body.push('\n');
                            body.push_str(next);
                            i += 1;
                        }
                        None => break,
                    }
                }
                if q == '"' { unescape(&body) } else { body }
            }
            _ => {
                // An unquoted value ends at ` #` (a comment).
                let v = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(c) => &rest[..c],
                    None if rest.starts_with('#') => "",
                    None => rest,
                };
                v.trim().to_string()
            }
        };
        out.push(Assignment { name: name.to_string(), value, line: start + 1 });
    }
    out
}

fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if q == '"' && !escaped => escaped = true,
            c if c == q && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// The raw value text of a line that assigns a name (for the audit's residue scan, which looks
/// at lines, not parsed values): `(name, value)` with the value as written, trimmed.
pub fn line_assignment(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = name_and_rest(line)?;
    Some((name, rest.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_comments_export_and_multiline() {
        let text = "# c\nA=1\nexport B = two # note\nC='lit \\n $X'\nD=\"x\\ny\"\nPEM=\"-----BEGIN-----\nabc\n-----END-----\"\nE=\n bad line\nF=#x\n";
        let got: Vec<(String, String)> = parse(text).into_iter().map(|a| (a.name, a.value)).collect();
        let want = [
            ("A", "1"),
            ("B", "two"),
            ("C", "lit \\n $X"),
            ("D", "x\ny"),
            ("PEM", "-----BEGIN-----\nabc\n-----END-----"),
            ("E", ""),
            ("F", ""),
        ];
        assert_eq!(got, want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>());
        assert_eq!(parse("X=\"unterminated\nmore").last().map(|a| a.value.as_str()), Some("unterminated\nmore"));
        assert_eq!(line_assignment("  export GITHUB_TOKEN=ghp_abc "), Some(("GITHUB_TOKEN", "ghp_abc")));
        assert_eq!(line_assignment("1X=2"), None);
    }
}
