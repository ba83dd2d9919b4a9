//! Reading the file: TOML syntax, environment overrides, and a deserialization that
//! goes on after an error so that every problem is reported.
//!
//! serde stops at the first error. To find them all, the document is deserialized
//! again and again: after each error the offending key (or array element) is taken out
//! of the table, the problem is recorded with its path, and the next attempt continues
//! with the default in its place. The recorded problems then go through
//! [`super::validate`] only for keys not already reported.
//!
//! This is built on `toml` directly rather than on the `config` crate named in
//! ARCHITECTURE.md: `config` merges its sources into one value tree and deserializes it
//! once, so it reports only the first problem and no line number.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::{Config, Problem, Problems, ENV_PREFIX, ENV_SEPARATOR};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// A key path, from the root of the document.
pub(super) type KeyPath = Vec<Seg>;

/// Formats a path as `section.key[2].key`.
pub(super) fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// Upper bound of deserialization attempts (one per problem found), so a pathological
/// document cannot loop for long.
const MAX_ATTEMPTS: usize = 1000;

/// A problem before line numbers are attached: its path (in the file's coordinates)
/// and message.
struct Raw {
    path: KeyPath,
    message: String,
}

pub(super) fn parse(
    text: &str,
    file: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Problems> {
    let problem_at = |line, message: String| Problems {
        file: file.to_owned(),
        problems: vec![Problem {
            file: file.to_owned(),
            line,
            key: String::new(),
            env_var: None,
            message,
        }],
    };
    let table: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            let line = e.span().map(|s| line_of(text, s.start));
            return Err(problem_at(
                line,
                format!("TOML syntax: {}", e.message().trim()),
            ));
        }
    };
    let mut doc = Document {
        root: Value::Table(table),
        env_paths: HashMap::new(),
        retyped: HashSet::new(),
        removed: HashMap::new(),
    };
    let mut raw = doc.apply_env(env);
    let config = doc.deserialize(&mut raw);

    let reported: Vec<KeyPath> = raw.iter().map(|r| r.path.clone()).collect();
    if let Some(config) = &config {
        for (path, message) in super::validate::validate(config) {
            // The configuration lacks the array elements taken out: back to file indices.
            let path = doc.original(&path);
            if !reported.iter().any(|r| path.starts_with(r)) {
                raw.push(Raw { path, message });
            }
        }
    }

    if raw.is_empty() {
        if let Some(config) = config {
            return Ok(config);
        }
    }
    let spans = toml::de::DeTable::parse(text).ok();
    let mut problems: Vec<Problem> = raw
        .into_iter()
        .map(|r| {
            let env_var = doc.env_var_for(&r.path);
            let line = match (&env_var, &spans) {
                (None, Some(spans)) => {
                    key_offset(spans.get_ref(), &r.path).map(|o| line_of(text, o))
                }
                _ => None,
            };
            Problem {
                file: file.to_owned(),
                line,
                key: display(&r.path),
                env_var,
                message: r.message,
            }
        })
        .collect();
    if problems.is_empty() {
        problems.push(Problem {
            file: file.to_owned(),
            line: None,
            key: String::new(),
            env_var: None,
            message: "the configuration could not be read".to_owned(),
        });
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(Problems {
        file: file.to_owned(),
        problems,
    })
}

/// The document being deserialized, and what is known about where its values came from.
struct Document {
    root: Value,
    /// Paths set from the environment, with the variable's name.
    env_paths: HashMap<KeyPath, String>,
    /// Environment values already re-read as TOML values.
    retyped: HashSet<KeyPath>,
    /// For each array (by path), the original indices of the elements taken out.
    removed: HashMap<KeyPath, Vec<usize>>,
}

impl Document {
    /// Applies the `JSG__…` variables of `env`, in name order; returns the problems of
    /// variables that cannot be applied.
    fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> Vec<Raw> {
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .collect();
        vars.sort();
        let mut problems = Vec::new();
        for (name, value) in vars {
            let path: KeyPath = name[prefix.len()..]
                .split(ENV_SEPARATOR)
                .map(|part| match part.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(part.to_ascii_lowercase()),
                })
                .collect();
            if path.is_empty()
                || matches!(path.first(), Some(Seg::Index(_)))
                || path.contains(&Seg::Key(String::new()))
            {
                problems.push(Raw {
                    path: vec![Seg::Key(name.clone())],
                    message: format!(
                        "environment variable {name} does not name a key (expected {ENV_PREFIX}{ENV_SEPARATOR}SECTION{ENV_SEPARATOR}KEY)"
                    ),
                });
                continue;
            }
            match set(&mut self.root, &path, Value::String(value)) {
                Ok(()) => {
                    self.env_paths.insert(path, name);
                }
                Err(message) => problems.push(Raw {
                    path,
                    message: format!("environment variable {name}: {message}"),
                }),
            }
        }
        problems
    }

    /// Deserializes until it succeeds, recording a problem and taking the offending
    /// value out after each failure. `None` when a problem cannot be taken out.
    fn deserialize(&mut self, problems: &mut Vec<Raw>) -> Option<Config> {
        for _ in 0..MAX_ATTEMPTS {
            let err = match serde_path_to_error::deserialize::<_, Config>(self.root.clone()) {
                Ok(config) => return Some(config),
                Err(e) => e,
            };
            let path: KeyPath = err
                .path()
                .iter()
                .filter_map(|s| match s {
                    Segment::Seq { index } => Some(Seg::Index(*index)),
                    Segment::Map { key } => Some(Seg::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect();
            let message = err.into_inner().message().trim().to_owned();

            if let Some(field) = quoted_after(&message, "unknown field `") {
                // serde_path_to_error's path may or may not end with the unknown key.
                let mut key = path.clone();
                if key.last() != Some(&Seg::Key(field.to_owned())) {
                    key.push(Seg::Key(field.to_owned()));
                }
                let expected = message
                    .split_once(", ")
                    .map(|(_, rest)| format!("; {rest}"))
                    .unwrap_or_default();
                let original = self.original(&key);
                if self.take_out(&key) {
                    problems.push(Raw {
                        path: original,
                        message: format!("unknown key{expected}"),
                    });
                    continue;
                }
            } else if let Some(field) = quoted_after(&message, "missing field `") {
                // Only entries of arrays of tables have required keys: drop the entry.
                let mut key = self.original(&path);
                key.push(Seg::Key(field.to_owned()));
                if matches!(path.last(), Some(Seg::Index(_))) && self.take_out(&path) {
                    // Not reported again when its value was taken out for a wrong type.
                    if !problems.iter().any(|p| p.path == key) {
                        problems.push(Raw {
                            path: key,
                            message: "required key is missing".to_owned(),
                        });
                    }
                    continue;
                }
            } else if self.retype_env_value(&path) {
                continue;
            } else if !path.is_empty() {
                let original = self.original(&path);
                if self.take_out(&path) {
                    problems.push(Raw {
                        path: original,
                        message,
                    });
                    continue;
                }
            }
            problems.push(Raw {
                path: self.original(&path),
                message,
            });
            return None;
        }
        None
    }

    /// If the value at `path` is a string from the environment that reads as another
    /// TOML value (`5348`, `true`, `[..]`), puts that value in its place.
    fn retype_env_value(&mut self, path: &KeyPath) -> bool {
        if !self.env_paths.contains_key(path) || self.retyped.contains(path) {
            return false;
        }
        let Some(Value::String(s)) = get(&self.root, path) else {
            return false;
        };
        let Ok(mut table) = format!("v = {s}").parse::<Table>() else {
            return false;
        };
        let Some(value) = table.remove("v") else {
            return false;
        };
        if value.is_str() {
            return false;
        }
        self.retyped.insert(path.clone());
        set(&mut self.root, path, value).is_ok()
    }

    /// Takes the value at `path` out of the document; remembers removed array elements
    /// so later paths can be mapped back to the file's indices.
    fn take_out(&mut self, path: &KeyPath) -> bool {
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        let original_index = match last {
            Seg::Index(_) => match self.original(path).last() {
                Some(Seg::Index(i)) => Some(*i),
                _ => None,
            },
            Seg::Key(_) => None,
        };
        let Some(container) = get_mut(&mut self.root, parent) else {
            return false;
        };
        let taken = match (container, last) {
            (Value::Table(t), Seg::Key(k)) => t.remove(k).is_some(),
            (Value::Array(a), Seg::Index(i)) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        };
        if let (true, Some(orig)) = (taken, original_index) {
            self.removed.entry(parent.to_vec()).or_default().push(orig);
        }
        taken
    }

    /// Maps a path in the current document to the file's indices (elements taken out
    /// of an array shift the ones after them).
    fn original(&self, path: &[Seg]) -> KeyPath {
        let mut current = Vec::new();
        let mut original = Vec::new();
        for seg in path {
            match seg {
                Seg::Index(i) => {
                    let mut idx = *i;
                    if let Some(removed) = self.removed.get(&current) {
                        let mut removed = removed.clone();
                        removed.sort_unstable();
                        for r in removed {
                            if r <= idx {
                                idx += 1;
                            }
                        }
                    }
                    original.push(Seg::Index(idx));
                }
                Seg::Key(_) => original.push(seg.clone()),
            }
            current.push(seg.clone());
        }
        original
    }

    /// The environment variable that set `path` or one of its parents.
    fn env_var_for(&self, path: &[Seg]) -> Option<String> {
        self.env_paths
            .iter()
            .filter(|(p, _)| path.starts_with(p) || p.starts_with(path))
            .map(|(_, var)| var.clone())
            .min()
    }
}

/// The text between `start` and the next backtick in `message`.
fn quoted_after<'m>(message: &'m str, start: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(start)?;
    rest.split_once('`').map(|(field, _)| field)
}

fn get<'v>(root: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| match (v, seg) {
        (Value::Table(t), Seg::Key(k)) => t.get(k),
        (Value::Array(a), Seg::Index(i)) => a.get(*i),
        _ => None,
    })
}

fn get_mut<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(root, |v, seg| match (v, seg) {
        (Value::Table(t), Seg::Key(k)) => t.get_mut(k),
        (Value::Array(a), Seg::Index(i)) => a.get_mut(*i),
        _ => None,
    })
}

/// Sets `path` to `value`, creating missing tables (and appending a table to an array
/// when the index is the array's length).
fn set(root: &mut Value, path: &[Seg], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".to_owned());
    };
    let mut here = root;
    for (n, seg) in parents.iter().enumerate() {
        let next_is_index = matches!(path[n + 1], Seg::Index(_));
        here = match (here, seg) {
            (Value::Table(t), Seg::Key(k)) => t.entry(k.clone()).or_insert_with(|| {
                if next_is_index {
                    Value::Array(Vec::new())
                } else {
                    Value::Table(Table::new())
                }
            }),
            (Value::Array(a), Seg::Index(i)) => {
                if *i == a.len() {
                    a.push(Value::Table(Table::new()));
                }
                match a.get_mut(*i) {
                    Some(v) => v,
                    None => return Err(format!("{} has no element {i}", display(&path[..n]))),
                }
            }
            (_, _) => return Err(format!("{} is not a table", display(&path[..=n]))),
        };
    }
    match (here, last) {
        (Value::Table(t), Seg::Key(k)) => {
            t.insert(k.clone(), value);
            Ok(())
        }
        (Value::Array(a), Seg::Index(i)) if *i <= a.len() => {
            if *i == a.len() {
                a.push(value);
            } else {
                a[*i] = value;
            }
            Ok(())
        }
        _ => Err(format!("{} is not a table or array", display(parents))),
    }
}

/// Byte offset of the key (or array element) at `path` in the file, or of its nearest
/// parent found there.
fn key_offset(table: &toml::de::DeTable<'_>, path: &[Seg]) -> Option<usize> {
    let mut best = None;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(table);
    for seg in path {
        let found = match seg {
            Seg::Key(k) => table
                .and_then(|t| t.iter().find(|(key, _)| key.get_ref() == k))
                .map(|(key, v)| (key.span().start, v.get_ref())),
            Seg::Index(i) => value
                .and_then(|v| v.as_array())
                .and_then(|a| a.get(*i))
                .map(|e| (e.span().start, e.get_ref())),
        };
        let Some((offset, v)) = found else { break };
        best = Some(offset);
        value = Some(v);
        table = v.as_table();
    }
    best
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
