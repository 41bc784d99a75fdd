//! Where each field of a YAML file is, so every diagnostic can name a line and column.
//!
//! serde_yaml reports a position only for the first error it meets; semantic checks run on typed
//! values that have forgotten where they came from. This index, built from the parser's event
//! stream, maps any field path back to the text.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column.
pub type Position = (usize, usize);

/// Positions of every key and value in one YAML document.
#[derive(Debug, Clone, Default)]
pub struct PositionIndex {
    keys: HashMap<String, Position>,
    values: HashMap<String, Position>,
}

/// A YAML syntax problem, already placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub position: Position,
    /// The parser's explanation.
    pub message: String,
}

enum Frame {
    Mapping {
        path: String,
        pending_key: Option<String>,
    },
    Sequence {
        path: String,
        next_index: usize,
    },
    /// A mapping or sequence used as a key: its contents have no field path.
    ComplexKey,
}

impl PositionIndex {
    /// Indexes `text`, which must hold exactly one YAML document.
    ///
    /// # Errors
    /// A syntax error, a second document, or no document at all.
    pub fn build(text: &str) -> Result<Self, SyntaxError> {
        let mut index = Self::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|err| SyntaxError {
                position: (err.marker().line(), err.marker().col() + 1),
                message: err.info().to_owned(),
            })?;
            let position = start_of(span);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(SyntaxError {
                            position,
                            message: "a second YAML document: one experiment per file".to_owned(),
                        });
                    }
                }
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Mapping {
                        path,
                        pending_key: pending @ None,
                    }) = stack.last_mut()
                    {
                        let key_path = join(path, &value);
                        index.keys.insert(key_path.clone(), position);
                        *pending = Some(key_path);
                    } else if let Some(path) = index.value_path(&mut stack) {
                        index.place_value(path, position);
                    }
                }
                Event::Alias(_) => {
                    if let Some(path) = index.value_path(&mut stack) {
                        index.place_value(path, position);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let is_mapping = matches!(event, Event::MappingStart(..));
                    let frame = if matches!(
                        stack.last(),
                        Some(Frame::Mapping {
                            pending_key: None,
                            ..
                        })
                    ) {
                        // A complex key; mark the key slot as taken so the value that follows
                        // is not read as another key.
                        if let Some(Frame::Mapping { pending_key, .. }) = stack.last_mut() {
                            *pending_key = Some(String::from("\u{0}complex"));
                        }
                        Frame::ComplexKey
                    } else {
                        match index.value_path(&mut stack) {
                            Some(path) => {
                                index.place_value(path.clone(), position);
                                if is_mapping {
                                    Frame::Mapping {
                                        path,
                                        pending_key: None,
                                    }
                                } else {
                                    Frame::Sequence {
                                        path,
                                        next_index: 0,
                                    }
                                }
                            }
                            None => Frame::ComplexKey,
                        }
                    };
                    stack.push(frame);
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        if documents == 0 {
            return Err(SyntaxError {
                position: (1, 1),
                message: "the file has no YAML document".to_owned(),
            });
        }
        Ok(index)
    }

    /// The path of the value that starts now, advancing the parent frame past it.
    fn value_path(&self, stack: &mut [Frame]) -> Option<String> {
        match stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { pending_key, .. }) => {
                let key = pending_key.take()?;
                (!key.starts_with('\u{0}')).then_some(key)
            }
            Some(Frame::Sequence { path, next_index }) => {
                let child = format!("{path}[{next_index}]");
                *next_index += 1;
                Some(child)
            }
            Some(Frame::ComplexKey) => None,
        }
    }

    fn place_value(&mut self, path: String, position: Position) {
        self.keys.entry(path.clone()).or_insert(position);
        self.values.insert(path, position);
    }

    /// Where the key of `path` is written, or its nearest indexed ancestor.
    pub fn key(&self, path: &str) -> Position {
        self.lookup(path, &self.keys)
    }

    /// Where the value of `path` is written, or its nearest indexed ancestor's key.
    pub fn value(&self, path: &str) -> Position {
        match self.values.get(path) {
            Some(position) => *position,
            None => self.key(path),
        }
    }

    fn lookup(&self, path: &str, map: &HashMap<String, Position>) -> Position {
        let mut current = path;
        loop {
            if let Some(position) = map.get(current) {
                return *position;
            }
            match parent_of(current) {
                Some(parent) => current = parent,
                None => return (1, 1),
            }
        }
    }
}

fn start_of(span: Span) -> Position {
    (span.start.line(), span.start.col() + 1)
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → None.
fn parent_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
apiVersion: v1
spec:
  faults:
    - name: a
      podKill:
        target: {mode: one}
    - name: b
";

    #[test]
    fn keys_and_values_are_placed() {
        let index = PositionIndex::build(DOC).unwrap();
        assert_eq!(index.key("apiVersion"), (1, 1));
        assert_eq!(index.value("apiVersion"), (1, 13));
        assert_eq!(index.key("spec.faults[0].name"), (4, 7));
        assert_eq!(index.key("spec.faults[1].name"), (7, 7));
        assert_eq!(index.key("spec.faults[0].podKill.target.mode"), (6, 18));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let index = PositionIndex::build(DOC).unwrap();
        assert_eq!(index.key("spec.faults[0].podKill.nothing"), (5, 7));
        assert_eq!(index.key("missing"), (1, 1));
    }

    #[test]
    fn syntax_errors_and_extra_documents_are_placed() {
        let err = PositionIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.position.0 >= 1);
        let err = PositionIndex::build("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.position.0, 2);
        assert!(err.message.contains("second YAML document"));
        assert!(PositionIndex::build("# only a comment\n").is_err());
    }
}
