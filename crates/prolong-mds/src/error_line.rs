//! The one line every binary prints for an error: the error and its causes,
//! joined by ": ". Many errors already write their cause into their own
//! message (`{path}: {source}`) and also return it as their source, so a
//! plain walk of the chain (anyhow's `{:#}`) would print the cause twice; a
//! cause whose text is already on the line is left out. It lives here because
//! every binary depends on this crate.

/// `e` and its causes on one line, no cause repeated, newlines as spaces.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cause = c.source();
    }
    out.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithCause {
        path: String,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("loading m")]
    struct Outer(#[source] WithCause);

    #[test]
    fn causes_already_in_the_text_are_not_repeated() {
        let inner = WithCause {
            path: "m/config.json".into(),
            source: std::io::Error::other("gone\nfor good"),
        };
        assert_eq!(
            error_line(&Outer(inner)),
            "loading m: m/config.json: gone for good"
        );
    }
}
