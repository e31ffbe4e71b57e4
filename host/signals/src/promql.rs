//! Building PromQL from untrusted names: a namespace or app name must never be able to end
//! the string literal it is put in, or widen a regex match.

/// `s` as a PromQL double-quoted string literal, quotes included. PromQL strings use Go's
/// escapes, so backslash, the quote and control characters are escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` with every RE2 metacharacter backslash-escaped, so it matches itself literally.
pub fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Regex (RE2; Prometheus anchors it at both ends) for the pods of the Deployment `name`:
/// `<name>-<pod-template-hash>-<random suffix>`. Exactly two dash-free segments follow the
/// name, so the pods of a Deployment `<name>-canary` (three segments) do not match.
pub fn deployment_pod_regex(name: &str) -> String {
    format!("{}-[a-z0-9]+-[a-z0-9]+", escape_regex(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_cannot_end_the_literal() {
        assert_eq!(quote("default"), r#""default""#);
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
        assert_eq!(quote(r"a\b"), r#""a\\b""#);
        assert_eq!(quote("x\"}) or vector(1) #"), r#""x\"}) or vector(1) #""#);
        assert_eq!(quote("l1\nl2\t\u{7}"), r#""l1\nl2\t\u0007""#);
        assert_eq!(quote("ünïcode"), "\"ünïcode\"");
    }

    #[test]
    fn regex_metacharacters_match_literally() {
        assert_eq!(escape_regex("web.v1"), r"web\.v1");
        assert_eq!(escape_regex(r"a+b*c?(d)|[e]{f}^$\"), r"a\+b\*c\?\(d\)\|\[e\]\{f\}\^\$\\");
        assert_eq!(escape_regex("plain-name"), "plain-name");
    }

    #[test]
    fn deployment_pod_regex_escapes_the_name_and_then_the_literal() {
        assert_eq!(deployment_pod_regex("web.v1"), r"web\.v1-[a-z0-9]+-[a-z0-9]+");
        // In the query the regex is a string literal, so its backslashes are doubled.
        assert_eq!(quote(&deployment_pod_regex("web.v1")), r#""web\\.v1-[a-z0-9]+-[a-z0-9]+""#);
    }
}
