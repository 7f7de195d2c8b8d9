//! The type each key holds, read off the typed defaults (a `usize` default serializes as an integer, an
//! `f64` as a float): a value of the wrong type is refused in plain words before serde sees it, so errors are
//! built from what was found, not by rewriting serde's messages.

use serde_yaml::Value;

/// A value whose type is not its key's.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TypeError {
    /// The dotted key path, with `[i]` for an element of a list.
    pub(super) path: String,
    /// What the key takes, in words (`a whole number (0 or more)`).
    pub(super) expected: &'static str,
    /// The value as written (cut to length).
    pub(super) found: String,
    /// A number YAML could not hold (1e400), which it reads as text.
    pub(super) too_large: bool,
}

impl TypeError {
    /// The error without the value, for an override that already names it.
    pub(super) fn without_value(&self) -> String {
        if self.too_large {
            format!("{} ({} is too large)", self.expected_in_range(), self.found)
        } else {
            format!("expected {}", self.expected)
        }
    }

    /// `path: expected …, found …`.
    pub(super) fn with_value(&self) -> String {
        if self.too_large {
            format!(
                "{}: {} ({} is too large)",
                self.path,
                self.expected_in_range(),
                self.found
            )
        } else {
            format!(
                "{}: expected {}, found {}",
                self.path, self.expected, self.found
            )
        }
    }

    fn expected_in_range(&self) -> String {
        format!("expected {} within range", self.expected)
    }
}

/// The first value of `tree` whose type differs from the same key's in `typed_defaults`.
pub(super) fn check(tree: &Value, typed_defaults: &Value, path: &str) -> Option<TypeError> {
    match (tree, typed_defaults) {
        (Value::Mapping(map), Value::Mapping(defaults)) => map.iter().find_map(|(k, v)| {
            let key = k.as_str()?;
            let child = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            check(v, defaults.get(k)?, &child)
        }),
        (Value::Sequence(items), Value::Sequence(defaults)) => {
            let element = defaults.first()?;
            (items.iter().enumerate()).find_map(|(i, v)| check(v, element, &format!("{path}[{i}]")))
        }
        (value, default) => {
            let expected = expected(default)?;
            (!fits(value, default)).then(|| TypeError {
                path: path.to_string(),
                expected,
                found: super::cut(&text(value)),
                too_large: expected == "a number" && looks_numeric(value),
            })
        }
    }
}

/// What a scalar default's type takes; `None` for strings and nulls (names and paths: serde checks them).
fn expected(default: &Value) -> Option<&'static str> {
    match default {
        Value::Bool(_) => Some("true or false"),
        Value::Number(n) if n.is_u64() => Some("a whole number (0 or more)"),
        Value::Number(n) if n.is_i64() => Some("a whole number"),
        Value::Number(_) => Some("a number"),
        _ => None,
    }
}

fn fits(value: &Value, default: &Value) -> bool {
    match (value, default) {
        (Value::Bool(_), Value::Bool(_)) => true,
        (Value::Number(v), Value::Number(d)) if d.is_u64() => v.is_u64(),
        (Value::Number(v), Value::Number(d)) if d.is_i64() => v.is_i64(),
        (Value::Number(_), Value::Number(_)) => true,
        _ => false,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Text that is a number too large for a float (YAML reads `1e400` as a string).
fn looks_numeric(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.trim_start_matches(['-', '+'])
            .starts_with(|c: char| c.is_ascii_digit())
            && s.parse::<f64>().is_ok_and(f64::is_infinite)
    })
}
