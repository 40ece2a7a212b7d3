//! Incus's API filtering (`?filter=` on lists): terms `FIELD OP VALUE` joined by `and` / `or`
//! (`and` binds tighter), `not` before a term; FIELD is a path into the object (`status`,
//! `name`, `config.image.os`, `expanded_config.limits.cpu`: the key after `config.` is taken
//! whole), OP `eq` or `ne`, VALUE bare or quoted. Text compares without regard to case.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
struct Term {
    negate: bool,
    field: String,
    equal: bool,
    value: String,
}

/// Alternatives, each a list of terms that must all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Vec<Vec<Term>>);

fn tokens(expr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("filter \"{expr}\": an unclosed quote"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

pub fn parse(expr: &str) -> Result<Filter, String> {
    let toks = tokens(expr)?;
    let bad = |why: &str| format!("filter \"{expr}\": {why} (FIELD eq|ne VALUE, joined by and/or)");
    let mut alternatives = vec![Vec::new()];
    let mut i = 0;
    loop {
        let negate = toks.get(i).is_some_and(|t| t.eq_ignore_ascii_case("not"));
        if negate {
            i += 1;
        }
        let (Some(field), Some(op), Some(value)) = (toks.get(i), toks.get(i + 1), toks.get(i + 2))
        else {
            return Err(bad("a term is incomplete"));
        };
        let equal = match op.to_ascii_lowercase().as_str() {
            "eq" => true,
            "ne" => false,
            _ => return Err(bad(&format!("unknown operator \"{op}\""))),
        };
        if let Some(last) = alternatives.last_mut() {
            last.push(Term {
                negate,
                field: field.clone(),
                equal,
                value: value.clone(),
            });
        }
        i += 3;
        match toks.get(i).map(|t| t.to_ascii_lowercase()) {
            None => break,
            Some(j) if j == "and" => {}
            Some(j) if j == "or" => alternatives.push(Vec::new()),
            Some(other) => return Err(bad(&format!("\"{other}\" where and/or was expected"))),
        }
        i += 1;
    }
    Ok(Filter(alternatives))
}

/// The value at `path` in `obj`, as text.
fn lookup(obj: &Value, path: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let v = obj.get(head)?;
    match rest {
        None => Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        // config maps have dotted keys of their own: the rest is one key when it names one
        Some(r) => match v.get(r) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(x) => Some(x.to_string()),
            None => lookup(v, r),
        },
    }
}

impl Filter {
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().any(|all| {
            all.iter().all(|t| {
                let found = lookup(obj, &t.field).unwrap_or_default();
                let same = found.eq_ignore_ascii_case(&t.value);
                (same == t.equal) != t.negate
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terms_and_or_not() {
        let a = json!({"name": "c1", "status": "Running", "config": {"image.os": "busybox"}});
        let b = json!({"name": "c2", "status": "Stopped", "config": {}});
        let f = parse("status eq running").expect("parse");
        assert!(f.matches(&a) && !f.matches(&b));
        let f = parse("config.image.os eq busybox and name eq c1").expect("parse");
        assert!(f.matches(&a) && !f.matches(&b));
        let f = parse("name eq c1 or name eq 'c2'").expect("parse");
        assert!(f.matches(&a) && f.matches(&b));
        let f = parse("not status eq running").expect("parse");
        assert!(!f.matches(&a) && f.matches(&b));
        assert!(parse("status eq").is_err());
        assert!(parse("status like x").is_err());
        assert!(parse("name eq \"c1").is_err());
    }
}
