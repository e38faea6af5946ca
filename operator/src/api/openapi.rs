//! The OpenAPI v3 keywords of a CRD schema, checked client-side as the API server checks them.
//!
//! This walks the very schema `ecsop crd` prints (types, enums, ranges, lengths, patterns, required
//! and unknown fields), so the CLI rejects what the API server would reject, from one source of truth.
//! CEL rules (`x-kubernetes-validations`) are evaluated separately by `kube-cel`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value;

use super::field_error::{FieldError, RuleSource};

/// Check `value` against `schema`, appending every violation to `errors`.
pub fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            errors.push(err(path, "type", "must not be null"));
        }
        return;
    }
    if schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true)
        && schema.get("properties").is_none()
    {
        return;
    }
    let Some(ty) = schema.get("type").and_then(Value::as_str) else {
        return;
    };
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        errors.push(err(path, "type", &format!("must be {} {ty}, got {}", article(ty), describe(value))));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(render).collect();
        errors.push(err(path, "enum", &format!("must be one of {}, got {}", list.join(", "), render(value))));
    }
    match value {
        Value::Number(n) => check_number(schema, n, path, errors),
        Value::String(s) => check_string(schema, s, path, errors),
        Value::Array(items) => {
            check_len(schema, items.len(), "minItems", "maxItems", "items", path, errors);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        errors.push(err(&join(path, name), "required", "is required"));
                    }
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let child_path = match additional {
                    Some(Value::Object(_)) => format!("{path}[{key}]"),
                    _ => join(path, key),
                };
                if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                    check(child_schema, child, &child_path, errors);
                } else if let Some(extra @ Value::Object(_)) = additional {
                    check(extra, child, &child_path, errors);
                } else if schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) != Some(true) {
                    let known: Vec<&str> =
                        properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                    let hint =
                        if known.is_empty() { String::new() } else { format!(" (known fields: {})", known.join(", ")) };
                    errors.push(err(&child_path, "unknown", &format!("unknown field{hint}")));
                }
            }
        }
        _ => {}
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, path: &str, errors: &mut Vec<FieldError>) {
    let Some(v) = n.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        if v < min || (exclusive && v == min) {
            errors.push(err(path, "minimum", &format!("must be at least {}, got {}", fmt_num(min), n)));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        if v > max || (exclusive && v == max) {
            errors.push(err(path, "maximum", &format!("must be at most {}, got {}", fmt_num(max), n)));
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    check_len(schema, s.chars().count(), "minLength", "maxLength", "characters", path, errors);
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match compiled(pattern) {
            Some(re) if !re.is_match(s) => {
                errors.push(err(path, "pattern", &format!("{s:?} does not match the pattern {pattern}")))
            }
            Some(_) => {}
            None => errors.push(err(path, "pattern", &format!("the schema's pattern {pattern} does not compile"))),
        }
    }
}

fn check_len(
    schema: &Value,
    len: usize,
    min_key: &str,
    max_key: &str,
    unit: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(min) = schema.get(min_key).and_then(Value::as_u64)
        && (len as u64) < min
    {
        errors.push(err(path, leak(min_key), &format!("must have at least {min} {unit}, has {len}")));
    }
    if let Some(max) = schema.get(max_key).and_then(Value::as_u64)
        && (len as u64) > max
    {
        errors.push(err(path, leak(max_key), &format!("must have at most {max} {unit}, has {len}")));
    }
}

fn leak(key: &str) -> &'static str {
    match key {
        "minItems" => "minItems",
        "maxItems" => "maxItems",
        "minLength" => "minLength",
        _ => "maxLength",
    }
}

/// Patterns compile once per process: the CLI validates many manifests against one schema.
fn compiled(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.entry(pattern.to_string()).or_insert_with(|| Regex::new(pattern).ok()).clone()
}

fn err(path: &str, keyword: &'static str, message: &str) -> FieldError {
    FieldError { path: path.to_string(), message: message.to_string(), source: RuleSource::Schema { keyword } }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => format!("the integer {n}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 { format!("{}", v as i64) } else { v.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: Value, value: Value) -> Vec<String> {
        let mut errors = Vec::new();
        check(&schema, &value, "spec", &mut errors);
        errors.into_iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }

    #[test]
    fn reports_every_violation_with_its_path() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "n": {"type": "integer", "minimum": 1, "maximum": 3},
            "s": {"type": "string", "pattern": "^x+$"},
            "l": {"type": "array", "maxItems": 1, "items": {"type": "string", "enum": ["p", "q"]}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}
        }});
        let errors = run(schema, json!({"n": 9, "s": "y", "l": ["p", "z"], "m": {"k": 1}, "zz": true}));
        assert!(errors.contains(&"spec.a: is required".to_string()), "{errors:?}");
        assert!(errors.contains(&"spec.n: must be at most 3, got 9".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.s: \"y\" does not match")), "{errors:?}");
        assert!(errors.contains(&"spec.l: must have at most 1 items, has 2".to_string()), "{errors:?}");
        assert!(errors.contains(&"spec.l[1]: must be one of p, q, got z".to_string()), "{errors:?}");
        assert!(errors.contains(&"spec.m[k]: must be a string, got the integer 1".to_string()), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("spec.zz: unknown field")), "{errors:?}");
        assert_eq!(errors.len(), 7, "{errors:?}");
    }

    #[test]
    fn a_valid_value_passes() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}});
        assert!(run(schema, json!({"n": 1})).is_empty());
    }
}
