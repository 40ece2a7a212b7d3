//! A YAML document as a tree of nodes that remember where they came from (file line and column, or
//! the `-o` override that set them), with scalars kept as their exact text.

use std::fmt;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A position in the definition file (1-based line and column).
    File { line: usize, col: usize },
    /// Set by `-o KEY=VALUE` on the command line.
    Override(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { line, col } => write!(f, "{line}:{col}"),
            Origin::Override(o) => write!(f, "-o {o}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing at all.
    Null,
    /// A scalar's text as written; `quoted` scalars are never null or booleans.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order, each with the origin of the key itself.
    Map(Vec<(String, Origin, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses one YAML document. An empty document is an empty mapping.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Map(Vec::new()),
        origin: Origin::File { line: 1, col: 1 },
    }))
}

enum Open {
    Seq(Node),
    Map {
        node: Node,
        pending_key: Option<(String, Origin)>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<(Open, usize)>,
    root: Option<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    error: Option<SyntaxError>,
}

fn origin_of(mark: &Marker) -> Origin {
    Origin::File {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl TreeBuilder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Open::Seq(seq), _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some((
                Open::Map {
                    node: map,
                    pending_key,
                },
                _,
            )) => match pending_key.take() {
                None => {
                    // A mapping key: only scalars make sense as keys in a definition.
                    let key = match node.value {
                        Value::Scalar { text, .. } => text,
                        Value::Null => String::new(),
                        _ => {
                            if self.error.is_none() {
                                let (line, col) = match node.origin {
                                    Origin::File { line, col } => (line, col),
                                    Origin::Override(_) => (0, 0),
                                };
                                self.error = Some(SyntaxError {
                                    line,
                                    col,
                                    message: "a mapping key must be a plain word".into(),
                                });
                            }
                            String::new()
                        }
                    };
                    *pending_key = Some((key, node.origin));
                }
                Some((key, key_origin)) => {
                    if let Value::Map(entries) = &mut map.value {
                        if entries.iter().any(|(k, _, _)| *k == key) && self.error.is_none() {
                            if let Origin::File { line, col } = key_origin {
                                self.error = Some(SyntaxError {
                                    line,
                                    col,
                                    message: format!("key \"{key}\" appears twice in this mapping"),
                                });
                            }
                        }
                        entries.push((key, key_origin, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = style != TScalarStyle::Plain;
                let is_null = !quoted
                    && tag.is_none()
                    && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let value = if is_null {
                    Value::Null
                } else {
                    Value::Scalar { text, quoted }
                };
                self.finish(
                    Node {
                        value,
                        origin: origin_of(&mark),
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                let node = Node {
                    value: Value::Seq(Vec::new()),
                    origin: origin_of(&mark),
                };
                self.stack.push((Open::Seq(node), anchor));
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    value: Value::Map(Vec::new()),
                    origin: origin_of(&mark),
                };
                self.stack.push((
                    Open::Map {
                        node,
                        pending_key: None,
                    },
                    anchor,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((open, anchor)) = self.stack.pop() {
                    let node = match open {
                        Open::Seq(n) => n,
                        Open::Map { node, .. } => node,
                    };
                    self.finish(node, anchor);
                }
            }
            Event::Alias(id) => {
                let mut node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    value: Value::Null,
                    origin: origin_of(&mark),
                });
                node.origin = origin_of(&mark);
                self.finish(node, 0);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_text_and_positions() {
        let n = parse("image:\n  release: 3.20\n  mode: 0600\n  q: \"null\"\n  e:\n").unwrap();
        let Value::Map(top) = &n.value else { panic!() };
        let Value::Map(img) = &top[0].2.value else {
            panic!()
        };
        assert_eq!(img[0].0, "release");
        assert_eq!(
            img[0].2.value,
            Value::Scalar {
                text: "3.20".into(),
                quoted: false
            }
        );
        assert_eq!(img[0].2.origin, Origin::File { line: 2, col: 12 });
        assert_eq!(
            img[1].2.value,
            Value::Scalar {
                text: "0600".into(),
                quoted: false
            }
        );
        assert_eq!(
            img[2].2.value,
            Value::Scalar {
                text: "null".into(),
                quoted: true
            }
        );
        assert_eq!(img[3].2.value, Value::Null);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
