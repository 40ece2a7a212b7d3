//! Templates in pongo2's syntax, the subset definitions use: `{{ expr|filter:arg }}`,
//! `{% if %}/{% elif %}/{% else %}`, `{% for x in list %}`, `{% set %}`, `{% autoescape %}`,
//! `{% verbatim %}`, `{# comments #}`, rendered against the definition as a JSON-like value.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("template: {0}")]
pub struct TemplateError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// Renders `text`; as distrobuilder does, output that still holds `{{` or `{%` is rendered again.
pub fn render(text: &str, context: &Value) -> Result<String, TemplateError> {
    let mut out = text.to_string();
    for _ in 0..10 {
        if !out.contains("{{") && !out.contains("{%") && !out.contains("{#") {
            break;
        }
        let nodes = parse(&out)?;
        let mut scope = Scope {
            root: context,
            locals: Vec::new(),
        };
        let mut rendered = String::new();
        render_nodes(&nodes, &mut scope, &mut rendered)?;
        let verbatim = nodes.iter().any(|n| matches!(n, TplNode::Verbatim(_)));
        let unchanged = rendered == out;
        out = rendered;
        // `{% verbatim %}` is how a definition keeps `{{ container.name }}` for Incus: its output is final.
        if unchanged || verbatim {
            break;
        }
    }
    Ok(out)
}

#[derive(Debug)]
enum TplNode {
    Text(String),
    Verbatim(String),
    Output(Expr),
    If(Vec<(Expr, Vec<TplNode>)>, Vec<TplNode>),
    For {
        vars: Vec<String>,
        iter: Expr,
        body: Vec<TplNode>,
        empty: Vec<TplNode>,
    },
    Set(String, Expr),
}

#[derive(Debug, Clone)]
enum Expr {
    Literal(Value),
    Var(Vec<String>),
    Filter(Box<Expr>, String, Option<Box<Expr>>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, String, Box<Expr>),
}

enum Piece<'a> {
    Text(&'a str),
    Verbatim(&'a str),
    Var(&'a str),
    Tag(&'a str),
}

/// Splits the template into text, `{{ }}` and `{% %}` pieces, honouring `-` whitespace trims.
fn lex(src: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min();
        let Some((i, open)) = next else {
            pieces.push(Piece::Text(if trim_next {
                rest.trim_start()
            } else {
                rest
            }));
            break;
        };
        let mut text = &rest[..i];
        if trim_next {
            text = text.trim_start();
        }
        let body_start = i + 2;
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let Some(end) = rest[body_start..].find(close) else {
            return err(format!("\"{open}\" is never closed by \"{close}\""));
        };
        let mut body = &rest[body_start..body_start + end];
        if let Some(b) = body.strip_prefix('-') {
            text = text.trim_end();
            body = b;
        }
        trim_next = false;
        if let Some(b) = body.strip_suffix('-') {
            trim_next = true;
            body = b;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        match open {
            "{{" => pieces.push(Piece::Var(body.trim())),
            "{%" => {
                let tag = body.trim();
                if tag == "verbatim" {
                    let after = &rest[body_start + end + 2..];
                    let Some(stop) = after.find("{% endverbatim %}") else {
                        return err("{% verbatim %} without {% endverbatim %}");
                    };
                    pieces.push(Piece::Verbatim(&after[..stop]));
                    rest = &after[stop + "{% endverbatim %}".len()..];
                    continue;
                }
                pieces.push(Piece::Tag(tag));
            }
            _ => {}
        }
        rest = &rest[body_start + end + 2..];
    }
    Ok(pieces)
}

fn parse(src: &str) -> Result<Vec<TplNode>, TemplateError> {
    let pieces = lex(src)?;
    let mut pos = 0;
    let (nodes, stop) = parse_block(&pieces, &mut pos, &[])?;
    if let Some(tag) = stop {
        return err(format!("unexpected {{% {tag} %}}"));
    }
    Ok(nodes)
}

/// Parses until one of `stops` (returned) or the end.
fn parse_block(
    pieces: &[Piece<'_>],
    pos: &mut usize,
    stops: &[&str],
) -> Result<(Vec<TplNode>, Option<String>), TemplateError> {
    let mut nodes = Vec::new();
    while *pos < pieces.len() {
        let piece = &pieces[*pos];
        *pos += 1;
        match piece {
            Piece::Text(t) => nodes.push(TplNode::Text(t.to_string())),
            Piece::Verbatim(t) => nodes.push(TplNode::Verbatim(t.to_string())),
            Piece::Var(v) => nodes.push(TplNode::Output(parse_expr(v)?)),
            Piece::Tag(tag) => {
                let (word, args) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
                let args = args.trim();
                if stops.contains(&word) {
                    return Ok((nodes, Some(tag.to_string())));
                }
                match word {
                    "if" => {
                        let mut branches = Vec::new();
                        let mut cond = parse_expr(args)?;
                        let mut otherwise = Vec::new();
                        loop {
                            let (body, stop) =
                                parse_block(pieces, pos, &["elif", "else", "endif"])?;
                            branches.push((cond.clone(), body));
                            let stop = stop.ok_or_else(|| {
                                TemplateError("{% if %} without {% endif %}".into())
                            })?;
                            if let Some(c) = stop.strip_prefix("elif") {
                                cond = parse_expr(c.trim())?;
                            } else if stop == "else" {
                                let (body, end) = parse_block(pieces, pos, &["endif"])?;
                                if end.is_none() {
                                    return err("{% if %} without {% endif %}");
                                }
                                otherwise = body;
                                break;
                            } else {
                                break;
                            }
                        }
                        nodes.push(TplNode::If(branches, otherwise));
                    }
                    "for" => {
                        let Some((vars, iter)) = args.split_once(" in ") else {
                            return err(format!("{{% for {args} %}}: expected \"for x in list\""));
                        };
                        let vars = vars.split(',').map(|v| v.trim().to_string()).collect();
                        let iter = parse_expr(iter.trim())?;
                        let (body, stop) = parse_block(pieces, pos, &["empty", "endfor"])?;
                        let mut empty = Vec::new();
                        match stop.as_deref() {
                            Some("empty") => {
                                let (b, end) = parse_block(pieces, pos, &["endfor"])?;
                                if end.is_none() {
                                    return err("{% for %} without {% endfor %}");
                                }
                                empty = b;
                            }
                            Some(_) => {}
                            None => return err("{% for %} without {% endfor %}"),
                        }
                        nodes.push(TplNode::For {
                            vars,
                            iter,
                            body,
                            empty,
                        });
                    }
                    "set" => {
                        let Some((name, value)) = args.split_once('=') else {
                            return err(format!(
                                "{{% set {args} %}}: expected \"set name = value\""
                            ));
                        };
                        nodes.push(TplNode::Set(
                            name.trim().to_string(),
                            parse_expr(value.trim())?,
                        ));
                    }
                    "autoescape" => {
                        let (body, stop) = parse_block(pieces, pos, &["endautoescape"])?;
                        if stop.is_none() {
                            return err("{% autoescape %} without {% endautoescape %}");
                        }
                        nodes.extend(body);
                    }
                    "comment" => {
                        let (_, stop) = parse_block(pieces, pos, &["endcomment"])?;
                        if stop.is_none() {
                            return err("{% comment %} without {% endcomment %}");
                        }
                    }
                    other => return err(format!("unknown tag {{% {other} %}}")),
                }
            }
        }
    }
    Ok((nodes, None))
}

// ---- expressions

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ident(String),
    Op(String),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut toks = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                    s.push(match chars[i] {
                        'n' => '\n',
                        't' => '\t',
                        o => o,
                    });
                } else {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if i >= chars.len() {
                return err(format!("unterminated string in \"{src}\""));
            }
            i += 1;
            toks.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            toks.push(Tok::Num(
                s.parse()
                    .map_err(|_| TemplateError(format!("bad number \"{s}\"")))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["==", "!=", "<=", ">=", "&&", "||"].contains(&two.as_str()) {
                toks.push(Tok::Op(two));
                i += 2;
            } else if "<>|:()!,".contains(c) {
                toks.push(Tok::Op(c.to_string()));
                i += 1;
            } else {
                return err(format!("unexpected \"{c}\" in \"{src}\""));
            }
        }
    }
    Ok(toks)
}

struct ExprParser {
    toks: Vec<Tok>,
    pos: usize,
    src: String,
}

fn parse_expr(src: &str) -> Result<Expr, TemplateError> {
    let mut p = ExprParser {
        toks: tokenize(src)?,
        pos: 0,
        src: src.to_string(),
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return err(format!("can't read \"{src}\""));
    }
    Ok(e)
}

impl ExprParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i == w)
    }
    fn is_op(&self, o: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(i)) if i == o)
    }
    fn or(&mut self) -> Result<Expr, TemplateError> {
        let mut left = self.and()?;
        while self.is_word("or") || self.is_op("||") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, TemplateError> {
        let mut left = self.not()?;
        while self.is_word("and") || self.is_op("&&") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, TemplateError> {
        if self.is_word("not") || self.is_op("!") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, TemplateError> {
        let left = self.filtered()?;
        let op = match self.peek() {
            Some(Tok::Op(o)) if ["==", "!=", "<", ">", "<=", ">="].contains(&o.as_str()) => {
                o.clone()
            }
            Some(Tok::Ident(w)) if w == "in" => "in".into(),
            Some(Tok::Ident(w))
                if w == "not"
                    && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(i)) if i == "in") =>
            {
                self.pos += 1;
                "not in".into()
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.filtered()?;
        Ok(Expr::Cmp(Box::new(left), op, Box::new(right)))
    }
    fn filtered(&mut self) -> Result<Expr, TemplateError> {
        let mut e = self.primary()?;
        while self.is_op("|") {
            self.pos += 1;
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                return err(format!(
                    "a filter name must follow \"|\" in \"{}\"",
                    self.src
                ));
            };
            self.pos += 1;
            let arg = if self.is_op(":") {
                self.pos += 1;
                Some(Box::new(self.primary()?))
            } else {
                None
            };
            e = Expr::Filter(Box::new(e), name, arg);
        }
        Ok(e)
    }
    fn primary(&mut self) -> Result<Expr, TemplateError> {
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Str(s)) => Ok(Expr::Literal(Value::String(s))),
            Some(Tok::Num(n)) => Ok(Expr::Literal(serde_json::json!(n))),
            Some(Tok::Ident(w)) => Ok(match w.as_str() {
                "true" | "True" => Expr::Literal(Value::Bool(true)),
                "false" | "False" => Expr::Literal(Value::Bool(false)),
                "nil" | "None" => Expr::Literal(Value::Null),
                _ => Expr::Var(w.split('.').map(str::to_string).collect()),
            }),
            Some(Tok::Op(o)) if o == "(" => {
                let e = self.or()?;
                if !self.is_op(")") {
                    return err(format!("missing \")\" in \"{}\"", self.src));
                }
                self.pos += 1;
                Ok(e)
            }
            _ => err(format!("can't read \"{}\"", self.src)),
        }
    }
}

// ---- rendering

struct Scope<'a> {
    root: &'a Value,
    locals: Vec<(String, Value)>,
}

impl Scope<'_> {
    fn lookup(&self, path: &[String]) -> Value {
        let Some((first, rest)) = path.split_first() else {
            return Value::Null;
        };
        let base = self
            .locals
            .iter()
            .rev()
            .find(|(k, _)| k == first)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.root.get(first).cloned().unwrap_or(Value::Null));
        rest.iter().fold(base, |v, key| match &v {
            Value::Object(m) => m.get(key).cloned().unwrap_or(Value::Null),
            Value::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i).cloned())
                .unwrap_or(Value::Null),
            _ => Value::Null,
        })
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn eval(e: &Expr, scope: &Scope<'_>) -> Result<Value, TemplateError> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Var(path) => scope.lookup(path),
        Expr::Not(x) => Value::Bool(!truthy(&eval(x, scope)?)),
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, scope)?) && truthy(&eval(b, scope)?)),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, scope)?) || truthy(&eval(b, scope)?)),
        Expr::Cmp(a, op, b) => {
            let (a, b) = (eval(a, scope)?, eval(b, scope)?);
            let ord = match (&a, &b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                _ => Some(text_of(&a).cmp(&text_of(&b))),
            };
            let equal = match (&a, &b) {
                (Value::Number(_), Value::Number(_)) => ord == Some(std::cmp::Ordering::Equal),
                _ => {
                    text_of(&a) == text_of(&b)
                        && (a.is_null() == b.is_null() || !a.is_string() && !b.is_string())
                }
            };
            let contains = || match &b {
                Value::Array(items) => items.iter().any(|i| text_of(i) == text_of(&a)),
                Value::Object(m) => m.contains_key(&text_of(&a)),
                other => text_of(other).contains(&text_of(&a)),
            };
            Value::Bool(match op.as_str() {
                "==" => equal,
                "!=" => !equal,
                "<" => ord == Some(std::cmp::Ordering::Less),
                ">" => ord == Some(std::cmp::Ordering::Greater),
                "<=" => ord != Some(std::cmp::Ordering::Greater),
                ">=" => ord != Some(std::cmp::Ordering::Less),
                "in" => contains(),
                _ => !contains(),
            })
        }
        Expr::Filter(x, name, arg) => {
            let v = eval(x, scope)?;
            let arg = match arg {
                Some(a) => Some(eval(a, scope)?),
                None => None,
            };
            apply_filter(name, v, arg)?
        }
    })
}

fn apply_filter(name: &str, v: Value, arg: Option<Value>) -> Result<Value, TemplateError> {
    let s = || text_of(&v);
    Ok(match name {
        "capfirst" => {
            let t = s();
            let mut c = t.chars();
            Value::String(match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            })
        }
        "lower" => Value::String(s().to_lowercase()),
        "upper" => Value::String(s().to_uppercase()),
        "title" => Value::String(
            s().split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f
                            .to_uppercase()
                            .chain(c.flat_map(char::to_lowercase))
                            .collect(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<String>>()
                .join(" "),
        ),
        "default" => {
            if truthy(&v) {
                v
            } else {
                arg.unwrap_or(Value::Null)
            }
        }
        "default_if_none" => {
            if v.is_null() {
                arg.unwrap_or(Value::Null)
            } else {
                v
            }
        }
        "join" => {
            let sep = arg.map(|a| text_of(&a)).unwrap_or_default();
            match &v {
                Value::Array(items) => {
                    Value::String(items.iter().map(text_of).collect::<Vec<_>>().join(&sep))
                }
                _ => v,
            }
        }
        "length" => serde_json::json!(match &v {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            other => text_of(other).chars().count(),
        }),
        "first" => match &v {
            Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
            other => Value::String(text_of(other).chars().take(1).collect()),
        },
        "last" => match &v {
            Value::Array(a) => a.last().cloned().unwrap_or(Value::Null),
            other => Value::String(
                text_of(other)
                    .chars()
                    .last()
                    .map(String::from)
                    .unwrap_or_default(),
            ),
        },
        "cut" => Value::String(s().replace(&arg.map(|a| text_of(&a)).unwrap_or_default(), "")),
        "safe" | "escape" | "e" | "string" => Value::String(s()),
        "integer" => serde_json::json!(s().trim().parse::<f64>().map(|f| f as i64).unwrap_or(0)),
        "yesno" => {
            let words = arg.map(|a| text_of(&a)).unwrap_or_else(|| "yes,no".into());
            let parts: Vec<&str> = words.split(',').collect();
            Value::String(
                if truthy(&v) {
                    parts[0]
                } else {
                    parts.get(1).copied().unwrap_or("")
                }
                .to_string(),
            )
        }
        other => return err(format!("unknown filter \"{other}\"")),
    })
}

fn render_nodes(
    nodes: &[TplNode],
    scope: &mut Scope<'_>,
    out: &mut String,
) -> Result<(), TemplateError> {
    for n in nodes {
        match n {
            TplNode::Text(t) | TplNode::Verbatim(t) => out.push_str(t),
            TplNode::Output(e) => out.push_str(&text_of(&eval(e, scope)?)),
            TplNode::If(branches, otherwise) => {
                let mut done = false;
                for (cond, body) in branches {
                    if truthy(&eval(cond, scope)?) {
                        render_nodes(body, scope, out)?;
                        done = true;
                        break;
                    }
                }
                if !done {
                    render_nodes(otherwise, scope, out)?;
                }
            }
            TplNode::For {
                vars,
                iter,
                body,
                empty,
            } => {
                let items: Vec<(Value, Value)> = match eval(iter, scope)? {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (serde_json::json!(i), v))
                        .collect(),
                    Value::Object(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
                    _ => Vec::new(),
                };
                if items.is_empty() {
                    render_nodes(empty, scope, out)?;
                }
                for (key, value) in items {
                    let depth = scope.locals.len();
                    if vars.len() == 2 {
                        scope.locals.push((vars[0].clone(), key));
                        scope.locals.push((vars[1].clone(), value));
                    } else {
                        scope.locals.push((vars[0].clone(), value));
                    }
                    render_nodes(body, scope, out)?;
                    scope.locals.truncate(depth);
                }
            }
            TplNode::Set(name, e) => {
                let v = eval(e, scope)?;
                scope.locals.push((name.clone(), v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"image": {"distribution": "debian", "release": "3.20", "variant": "default",
                          "architecture_mapped": "amd64", "serial": "20260101_0000"},
               "targets": {"incus": {"vm": {"filesystem": "ext4"}}}, "list": ["a", "b"]})
    }

    #[test]
    fn distrobuilder_defaults_render() {
        let desc = "{{ image.distribution|capfirst }} {{ image.release }} {{ image.architecture_mapped }}{% if image.variant != \"default\" %} ({{ image.variant }}){% endif %} ({{ image.serial }})";
        assert_eq!(
            render(desc, &ctx()).unwrap(),
            "Debian 3.20 amd64 (20260101_0000)"
        );
    }

    #[test]
    fn control_flow_filters_and_unknowns() {
        let c = ctx();
        assert_eq!(
            render("{% for x in list %}{{ x|upper }},{% endfor %}", &c).unwrap(),
            "A,B,"
        );
        assert_eq!(render("{% if targets.incus.vm.filesystem == \"btrfs\" %}b{% elif image.release in \"3.20 3.19\" %}r{% else %}e{% endif %}", &c).unwrap(), "r");
        assert_eq!(render("[{{ nothing.here }}]", &c).unwrap(), "[]");
        assert_eq!(
            render("{{ list|join:\",\" }} {{ missing|default:\"x\" }}", &c).unwrap(),
            "a,b x"
        );
        assert_eq!(
            render("{% verbatim %}{{ container.name }}{% endverbatim %}", &c).unwrap(),
            "{{ container.name }}"
        );
        assert!(render("{% bogus %}", &c).is_err());
        assert!(render("{{ image|nofilter }}", &c).is_err());
        assert!(render("{% if x %}open", &c).is_err());
    }
}
