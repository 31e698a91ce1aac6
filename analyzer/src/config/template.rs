//! Injection-safe PromQL templating.
//!
//! Analysis configs hold PromQL with `{{variable}}` placeholders, e.g.
//! `sum(rate(http_requests_total{namespace="{{namespace}}",pod=~"{{name}}-canary-.*"}[1m]))`.
//! Values come from webhooks, i.e. from whoever can reach Verdict, so a value
//! must never change the *shape* of the query. Two rules make that hold:
//!
//! * inside a double-quoted PromQL string the value is escaped (backslash,
//!   quote, newline), so it can only ever be string content;
//! * outside a string (a range like `[{{window}}]`, a number) the value must
//!   be a bare token: letters, digits and `_ . : -` only.
//!
//! Placeholders are found and classified when the template is parsed (at
//! config load), so a template that puts a webhook value somewhere unsafe is
//! rejected before any request arrives. Names and namespaces are checked
//! against Kubernetes syntax before they get here ([`validate_k8s_name`]);
//! escaping is the second line of defence, not the only one.

use std::collections::BTreeMap;

/// A parsed template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var { name: String, quoted: bool },
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed '{{{{' at byte {0}")]
    Unclosed(usize),
    #[error("empty placeholder '{{{{}}}}' at byte {0}")]
    EmptyName(usize),
    #[error(
        "placeholder at byte {0} follows a backslash inside a string: the backslash would \
         escape the value's first character and let it end the string"
    )]
    EscapedPlaceholder(usize),
    #[error("invalid placeholder name {0:?} (letters, digits, '_', '-', '.')")]
    BadName(String),
    #[error("variable {0:?} is not defined for this request")]
    Missing(String),
    #[error(
        "value {value:?} of variable {name:?} is not allowed outside a quoted string \
         (only letters, digits and '_ . : -')"
    )]
    UnsafeBareValue { name: String, value: String },
}

impl QueryTemplate {
    /// Parses `source`, classifying each placeholder as quoted or bare.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut in_string: Option<char> = None; // the quote char of the open PromQL string
        let mut escaped = false;
        let mut i = 0;
        while i < source.len() {
            if source[i..].starts_with("{{") {
                // `"\{{x}}"`: the template's backslash would pair with the
                // escaped value's first character (found by the template
                // fuzz target's structure check).
                if escaped {
                    return Err(TemplateError::EscapedPlaceholder(i));
                }
                let close = source[i + 2..]
                    .find("}}")
                    .ok_or(TemplateError::Unclosed(i))?;
                let name = source[i + 2..i + 2 + close].trim();
                if name.is_empty() {
                    return Err(TemplateError::EmptyName(i));
                }
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(TemplateError::BadName(name.to_string()));
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Var {
                    name: name.to_string(),
                    // Backtick strings are raw in PromQL: no escape can make a
                    // value safe there, so treat it as bare (strict charset).
                    quoted: matches!(in_string, Some('"') | Some('\'')),
                });
                i += 2 + close + 2;
                escaped = false;
                continue;
            }
            let c = source[i..].chars().next().expect("in bounds");
            match in_string {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q != '`' {
                        escaped = true;
                    } else if c == q {
                        in_string = None;
                    }
                }
                None => {
                    if matches!(c, '"' | '\'' | '`') {
                        in_string = Some(c);
                    }
                }
            }
            literal.push(c);
            i += c.len_utf8();
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(QueryTemplate {
            source: source.to_string(),
            parts,
        })
    }

    /// The template text as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Names of the variables the template uses, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders with `vars`; every value is escaped or checked per position.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var { name, quoted } => {
                    let value = vars
                        .get(name)
                        .ok_or_else(|| TemplateError::Missing(name.clone()))?;
                    if *quoted {
                        escape_promql_string(value, &mut out);
                    } else if is_bare_token(value) {
                        out.push_str(value);
                    } else {
                        return Err(TemplateError::UnsafeBareValue {
                            name: name.clone(),
                            value: value.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Escapes `value` as the content of a PromQL double- or single-quoted string
/// (Go string-literal escapes, which PromQL uses).
fn escape_promql_string(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// A value that cannot change a query's structure when written bare.
fn is_bare_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Checks a Kubernetes object name or namespace (RFC 1123 subdomain:
/// lowercase alphanumerics, '-' and '.', starting and ending alphanumeric,
/// at most 253 characters). Flagger and Argo only ever send such names, so
/// anything else is a forged or broken request.
pub fn validate_k8s_name(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} is not a valid Kubernetes name (lowercase letters, digits, '-', '.'; \
             at most 253 characters; starting and ending with a letter or digit)"
        ))
    }
}

/// Checks an opaque identifier such as Flagger's checksum or a pod-template
/// hash: letters, digits, '-', '_', '.' only, at most 128 characters.
pub fn validate_token(what: &str, value: &str) -> Result<(), String> {
    if !value.is_empty() && value.len() <= 128 && is_bare_token(value) && !value.contains(':') {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} must be 1-128 letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_quoted_and_bare_placeholders() {
        let t = QueryTemplate::parse(
            r#"sum(rate(x{namespace="{{namespace}}",pod=~"{{ name }}-.*"}[{{window}}]))"#,
        )
        .unwrap();
        let q = t
            .render(&vars(&[
                ("namespace", "test"),
                ("name", "podinfo"),
                ("window", "2m"),
            ]))
            .unwrap();
        assert_eq!(q, r#"sum(rate(x{namespace="test",pod=~"podinfo-.*"}[2m]))"#);
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            vec!["namespace", "name", "window"]
        );
    }

    #[test]
    fn injection_inside_a_string_stays_string_content() {
        let t = QueryTemplate::parse(r#"up{pod="{{p}}"}"#).unwrap();
        let q = t.render(&vars(&[("p", r#"x"} or vector(1) #"#)])).unwrap();
        assert_eq!(q, r#"up{pod="x\"} or vector(1) #"}"#);
    }

    #[test]
    fn injection_outside_a_string_is_rejected() {
        let t = QueryTemplate::parse("rate(x[{{window}}])").unwrap();
        let err = t
            .render(&vars(&[("window", "1m]) or vector(1) #")]))
            .unwrap_err();
        assert!(matches!(err, TemplateError::UnsafeBareValue { .. }));
    }

    #[test]
    fn backtick_strings_are_treated_as_bare() {
        let t = QueryTemplate::parse("up{pod=`{{p}}`}").unwrap();
        assert!(t.render(&vars(&[("p", "a`} or vector(1)")])).is_err());
        assert_eq!(t.render(&vars(&[("p", "a-1")])).unwrap(), "up{pod=`a-1`}");
    }

    #[test]
    fn escaped_quotes_do_not_end_the_string() {
        let t = QueryTemplate::parse(r#"up{a="x\"y",b="{{v}}"} + {{n}}"#).unwrap();
        let q = t.render(&vars(&[("v", "\""), ("n", "1")])).unwrap();
        assert_eq!(q, r#"up{a="x\"y",b="\""} + 1"#);
    }

    #[test]
    fn parse_errors_are_precise() {
        assert_eq!(
            QueryTemplate::parse("up{{name"),
            Err(TemplateError::Unclosed(2))
        );
        assert_eq!(
            QueryTemplate::parse("{{ }}"),
            Err(TemplateError::EmptyName(0))
        );
        assert!(matches!(
            QueryTemplate::parse("{{a b}}"),
            Err(TemplateError::BadName(_))
        ));
        let t = QueryTemplate::parse("{{missing}}").unwrap();
        assert_eq!(
            t.render(&BTreeMap::new()),
            Err(TemplateError::Missing("missing".into()))
        );
    }

    #[test]
    fn a_placeholder_escaped_by_the_template_is_refused() {
        // The value `\"} or vector(1) #` would otherwise end the string.
        assert_eq!(
            QueryTemplate::parse(r#"up{a="\{{name}}"}"#),
            Err(TemplateError::EscapedPlaceholder(7))
        );
        // An escaped backslash before it is fine.
        assert!(QueryTemplate::parse(r#"up{a="\\{{name}}"}"#).is_ok());
        assert!(QueryTemplate::parse(r#"up{a=~"x\.{{name}}"}"#).is_ok());
    }

    #[test]
    fn kubernetes_names() {
        assert!(validate_k8s_name("name", "podinfo").is_ok());
        assert!(validate_k8s_name("name", "my-app.v2").is_ok());
        assert!(validate_k8s_name("name", "x\"} or vector(1) #").is_err());
        assert!(validate_k8s_name("name", "Podinfo").is_err());
        assert!(validate_k8s_name("name", "").is_err());
        assert!(validate_k8s_name("name", "-a").is_err());
        assert!(validate_k8s_name("name", &"a".repeat(254)).is_err());
        assert!(validate_token("checksum", "85d557f47b").is_ok());
        assert!(validate_token("checksum", "a b").is_err());
    }
}
