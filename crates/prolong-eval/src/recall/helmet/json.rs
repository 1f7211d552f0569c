//! JSON text as Python's `json.dumps(..., indent=4)` writes it: JSON KV's
//! contexts are compared byte for byte with HELMET's.

use serde_json::Value;

/// `records` as Python's `json.dumps(dict(records), indent=4)` writes them (ASCII
/// only: other characters as `\uXXXX`).
pub fn json_object_indent4(records: &[(&str, &str)]) -> String {
    if records.is_empty() {
        return "{}".to_owned();
    }
    let lines: Vec<String> = records
        .iter()
        .map(|(k, v)| json_record_line(k, v))
        .collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

/// One record's line of [`json_object_indent4`] (without the comma).
pub fn json_record_line(key: &str, value: &str) -> String {
    let string = |s: &str| prolong_mds::pyjson::dumps(&Value::from(s));
    format!("    {}: {}", string(key), string(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_dumps_indent4() {
        assert_eq!(
            json_object_indent4(&[("a", "b\"é"), ("c", "\u{1F600}")]),
            "{\n    \"a\": \"b\\\"\\u00e9\",\n    \"c\": \"\\ud83d\\ude00\"\n}"
        );
        assert_eq!(json_object_indent4(&[]), "{}");
    }
}
