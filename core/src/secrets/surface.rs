//! Where credentials may sit in `openclaw.json`: the reference's SecretRef credential-surface
//! matrix (`core/data/secretref-credentials-matrix.json`, copied from the reference package's
//! `docs/reference/secretref-user-supplied-credentials-matrix.json`, 2026.9.6), dot paths with
//! `*` for any map key.

use std::sync::OnceLock;

use serde_json::Value;

const MATRIX: &str = include_str!("../../data/secretref-credentials-matrix.json");

/// One credential path of the config (`models.providers.*.apiKey`), as segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub id: String,
    pub segments: Vec<String>,
}

/// The `openclaw.json` patterns, in the matrix's order.
pub fn config_patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let v: Value = serde_json::from_str(MATRIX).unwrap_or(Value::Null);
        v["entries"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["configFile"] == "openclaw.json")
                    .filter_map(|e| {
                        let path = e["path"].as_str()?;
                        Some(Pattern {
                            id: e["id"].as_str().unwrap_or(path).to_string(),
                            segments: path.split('.').map(str::to_string).collect(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// A credential field present in a config.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'a> {
    pub segments: Vec<String>,
    pub value: &'a Value,
    pub pattern: &'static Pattern,
}

impl Found<'_> {
    /// `models.providers.openai.apiKey`.
    pub fn path(&self) -> String {
        self.segments.join(".")
    }

    /// The model provider a field belongs to (`models.providers.<id>.…`).
    pub fn provider(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [m, p, id, ..] if m == "models" && p == "providers" => Some(id.as_str()),
            _ => None,
        }
    }
}

fn walk<'a>(node: &'a Value, rest: &[String], at: &mut Vec<String>, pattern: &'static Pattern, out: &mut Vec<Found<'a>>) {
    let Some((head, tail)) = rest.split_first() else {
        out.push(Found { segments: at.clone(), value: node, pattern });
        return;
    };
    let Some(map) = node.as_object() else { return };
    if head == "*" {
        for (k, v) in map {
            at.push(k.clone());
            walk(v, tail, at, pattern, out);
            at.pop();
        }
    } else if let Some(v) = map.get(head.as_str()) {
        at.push(head.clone());
        walk(v, tail, at, pattern, out);
        at.pop();
    }
}

/// Every credential field present in `config` (null values skipped), document order within a
/// pattern, patterns in the matrix's order; a path matched by two patterns is listed once.
pub fn find(config: &Value) -> Vec<Found<'_>> {
    let mut out: Vec<Found<'_>> = Vec::new();
    for p in config_patterns() {
        let mut found = Vec::new();
        walk(config, &p.segments, &mut Vec::new(), p, &mut found);
        for f in found {
            if !f.value.is_null() && !out.iter().any(|o| o.segments == f.segments) {
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_matrix_loads_and_wildcards_match_map_keys() {
        assert!(config_patterns().len() >= 100, "{}", config_patterns().len());
        let cfg = json!({
            "gateway": {"auth": {"token": "t"}},
            "models": {"providers": {"openai": {"apiKey": "k", "headers": {"X-Key": "h"}}, "local": {"baseUrl": "u"}}},
        });
        let found: Vec<(String, Option<String>)> = find(&cfg).iter().map(|f| (f.path(), f.provider().map(str::to_string))).collect();
        assert!(found.contains(&("gateway.auth.token".into(), None)));
        assert!(found.contains(&("models.providers.openai.apiKey".into(), Some("openai".into()))));
        assert!(found.contains(&("models.providers.openai.headers.X-Key".into(), Some("openai".into()))));
        assert_eq!(found.len(), 3, "{found:?}");
    }
}
