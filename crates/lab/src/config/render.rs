//! A resolved config as YAML in the layout of `defaults.yaml`: the same keys, order and comments, with the
//! resolved values in place of the defaults. So every config a run saves documents itself.

use super::DEFAULTS_YAML;
use anyhow::{Context, Result};
use serde_yaml::Value;

/// Renders `tree` (a full config) line by line over the defaults' text.
pub(super) fn commented(tree: &Value) -> Result<String> {
    let mut out = String::new();
    // (indent, key) of the sections enclosing the current line.
    let mut sections: Vec<(usize, String)> = vec![];
    for line in DEFAULTS_YAML.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.is_empty() || body.starts_with('#') {
            out += line;
            out.push('\n');
            continue;
        }
        let (key, rest) = body
            .split_once(':')
            .context("defaults.yaml: a line without a key")?;
        sections.retain(|(i, _)| *i < indent);
        let comment = rest.find(" #").map(|at| &rest[at..]);
        let value_text = rest[..rest.len() - comment.map_or(0, str::len)].trim();
        if value_text.is_empty() {
            sections.push((indent, key.to_string()));
            out += line;
            out.push('\n');
            continue;
        }
        let mut node = tree;
        for part in sections.iter().map(|(_, k)| k.as_str()).chain([key]) {
            node = node
                .get(part)
                .with_context(|| format!("resolved config has no `{part}`"))?;
        }
        let mut text = format!("{}{key}: {}", &line[..indent], flow(node));
        if let Some(comment) = comment {
            // Keep the defaults' comment column where the value fits.
            let column = line.len() - comment.len();
            while text.len() < column {
                text.push(' ');
            }
            text += comment;
        }
        out += &text;
        out.push('\n');
    }
    Ok(out)
}

/// One value in YAML flow style (`[0.9, 0.999]`, `null`, a quoted string where YAML needs it), as config.yaml
/// writes it.
pub fn flow(v: &Value) -> String {
    match v {
        Value::Sequence(items) => {
            format!(
                "[{}]",
                items.iter().map(flow).collect::<Vec<_>>().join(", ")
            )
        }
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}
