//! `-o KEY=VALUE` overrides as distrobuilder takes them (repeatable, comma-separated pairs), applied
//! to the YAML tree before decoding, so a bad key or value is reported like a bad line would be.

use crate::definition::DefinitionError;
use crate::yaml::{Node, Origin, Value};

/// One `KEY=VALUE` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub key: String,
    pub value: String,
    /// The pair as the user wrote it, for error messages.
    pub text: String,
}

fn bad(text: &str, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        location: format!("-o {text}"),
        key: text.split('=').next().unwrap_or("").into(),
        message: message.into(),
    }
}

/// Splits one `-o` argument into pairs: `,` separates pairs, the first `=` separates key from value,
/// and `\,`, `\=` and `\\` stand for themselves.
pub fn parse(arg: &str) -> Result<Vec<Override>, DefinitionError> {
    let mut pairs = Vec::new();
    let mut raw = String::new(); // as typed, for messages
    let mut key = String::new();
    let mut value: Option<String> = None;
    let mut chars = arg.chars();
    let mut push = |raw: &mut String,
                    key: &mut String,
                    value: &mut Option<String>|
     -> Result<(), DefinitionError> {
        let text = std::mem::take(raw);
        let k = std::mem::take(key);
        match value.take() {
            Some(v) if !k.trim().is_empty() => {
                pairs.push(Override {
                    key: k.trim().to_string(),
                    value: v,
                    text,
                });
                Ok(())
            }
            _ if text.is_empty() => Ok(()),
            _ => Err(bad(
                &text,
                "options are KEY=VALUE (write \\, and \\= for a comma or = inside a value)",
            )),
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                raw.push('\\');
                raw.push(next);
                let target = match value.as_mut() {
                    Some(v) => v,
                    None => &mut key,
                };
                if !matches!(next, ',' | '=' | '\\') {
                    target.push('\\');
                }
                target.push(next);
            }
            ',' => push(&mut raw, &mut key, &mut value)?,
            '=' if value.is_none() => {
                raw.push(c);
                value = Some(String::new());
            }
            _ => {
                raw.push(c);
                match value.as_mut() {
                    Some(v) => v.push(c),
                    None => key.push(c),
                }
            }
        }
    }
    push(&mut raw, &mut key, &mut value)?;
    Ok(pairs)
}

/// Sets `ov.key` in the tree. Mappings on the way are created (the decoder then rejects keys the
/// schema doesn't have); list indexes must exist; only scalars can be set.
pub fn apply(root: &mut Node, ov: &Override) -> Result<(), DefinitionError> {
    let origin = Origin::Override(ov.text.clone());
    let parts: Vec<&str> = ov.key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(
            &ov.text,
            format!(
                "\"{}\" is not a key path (write e.g. image.release or files.0.path)",
                ov.key
            ),
        ));
    }
    let mut node = root;
    let mut walked = String::new();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        if matches!(node.value, Value::Null) {
            node.value = Value::Map(Vec::new());
        }
        node = match &mut node.value {
            Value::Map(entries) => {
                let pos = match entries.iter().position(|(k, _, _)| k == part) {
                    Some(p) => p,
                    None => {
                        if let Some(index) = parts.get(i + 1).and_then(|p| p.parse::<usize>().ok())
                        {
                            return Err(bad(
                                &ov.text,
                                format!("{walked}: index {index} is out of range: the definition has no {walked}"),
                            ));
                        }
                        let value = if last {
                            Value::Null
                        } else {
                            Value::Map(Vec::new())
                        };
                        entries.push((
                            part.to_string(),
                            origin.clone(),
                            Node {
                                value,
                                origin: origin.clone(),
                            },
                        ));
                        entries.len() - 1
                    }
                };
                &mut entries[pos].2
            }
            Value::Seq(items) => {
                let len = items.len();
                let index: usize = part.parse().map_err(|_| {
                    bad(
                        &ov.text,
                        format!(
                            "{}: is a list; index it by number (e.g. {}.0)",
                            parent(&walked),
                            parent(&walked)
                        ),
                    )
                })?;
                items.get_mut(index).ok_or_else(|| {
                    bad(
                        &ov.text,
                        format!(
                            "{}: index {index} is out of range: the list has {len} entries",
                            parent(&walked)
                        ),
                    )
                })?
            }
            Value::Scalar { .. } => {
                return Err(bad(
                    &ov.text,
                    format!(
                        "{} is a single value, it has no key \"{part}\"",
                        parent(&walked)
                    ),
                ))
            }
            Value::Null => unreachable!("null was replaced by a mapping above"),
        };
    }
    match node.value {
        Value::Map(_) | Value::Seq(_) => Err(bad(
            &ov.text,
            format!(
                "{} is {}; -o sets single values only (e.g. {}.0=...)",
                ov.key,
                node.kind(),
                ov.key
            ),
        )),
        _ => {
            node.value = Value::Scalar {
                text: ov.value.clone(),
                quoted: true,
            };
            node.origin = origin;
            Ok(())
        }
    }
}

fn parent(walked: &str) -> &str {
    walked.rsplit_once('.').map(|(p, _)| p).unwrap_or(walked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_on_unescaped_commas() {
        let p = parse("image.release=3.20,image.variant=cloud").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[1].key.as_str(), p[1].value.as_str()),
            ("image.variant", "cloud")
        );
        let p = parse(r"source.url=http://x/?a=b\,c,image.name=a\=b").unwrap();
        assert_eq!(p[0].value, "http://x/?a=b,c");
        assert_eq!(p[1].value, "a=b");
        assert!(parse("justakey").is_err());
        assert!(parse("=v").is_err());
    }

    #[test]
    fn list_index_out_of_range_is_an_error_not_a_panic() {
        let mut root = crate::yaml::parse("source:\n  keys: []\n").unwrap();
        let o = &parse("source.keys.0=ABC").unwrap()[0];
        let e = apply(&mut root, o).unwrap_err();
        assert!(e.to_string().contains("index 0 is out of range"), "{e}");
        assert!(e.to_string().starts_with("-o source.keys.0=ABC"), "{e}");
    }
}
