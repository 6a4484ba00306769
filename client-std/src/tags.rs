//! CRUD tags (client-spec §6.2), kept where parodus keeps them: the `--crud-config-file` JSON,
//! `{"tags":{"<name>":{...}}}`. The core routes a tag request here and sends the answer.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use xmidt_client_core::TagOp;

/// Bounds on what a request can make the file grow to.
const MAX_TAGS: usize = 64;
const MAX_PAYLOAD: usize = 4096;
const MAX_FILE: u64 = 256 * 1024;

/// A status and a JSON payload (empty for none).
pub(crate) type Answer = (u16, Vec<u8>);

pub(crate) struct TagStore {
    path: Option<PathBuf>,
}

enum Loaded {
    Missing,
    Tags(Map<String, Value>),
}

impl TagStore {
    pub fn new(path: Option<PathBuf>) -> Self {
        TagStore { path }
    }

    /// Carries out `op` on the tag `name` (`None`: all tags) with the request's `payload`.
    pub fn handle(&self, op: TagOp, name: Option<&str>, payload: &[u8]) -> Answer {
        // parodus without a file has nowhere to keep tags.
        let Some(path) = self.path.as_deref() else {
            return (500, Vec::new());
        };
        let loaded = match load(path) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "CRUD config unreadable");
                return (500, Vec::new());
            }
        };
        match (op, name) {
            (TagOp::Retrieve, name) => match loaded {
                // parodus: a missing or empty file is a server error, an empty list a bad request.
                Loaded::Missing => (500, Vec::new()),
                Loaded::Tags(tags) => retrieve(&tags, name),
            },
            (TagOp::Delete, Some(name)) => match loaded {
                Loaded::Missing => (500, Vec::new()),
                Loaded::Tags(mut tags) => match tags.remove(name) {
                    Some(_) => saved(path, tags, (200, Vec::new())),
                    None => (400, Vec::new()),
                },
            },
            (op @ (TagOp::Create | TagOp::Update), Some(name)) => {
                let mut tags = match loaded {
                    Loaded::Missing => Map::new(),
                    Loaded::Tags(tags) => tags,
                };
                let Some(tag) = valid_tag(payload) else {
                    return (400, Vec::new());
                };
                let exists = tags.contains_key(name);
                let status = match (op, exists) {
                    (TagOp::Create, true) => return (409, Vec::new()),
                    (_, true) => 200,
                    (_, false) if tags.len() >= MAX_TAGS => return (400, Vec::new()),
                    (_, false) => 201,
                };
                let answer = one(name, &tag);
                tags.insert(name.to_string(), tag);
                saved(path, tags, (status, answer))
            }
            _ => (400, Vec::new()),
        }
    }
}

/// A tag's JSON: an object of strings and numbers with a numeric `expires`.
fn valid_tag(payload: &[u8]) -> Option<Value> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let scalar = fields.values().all(|v| v.is_string() || v.is_number());
    let expires = fields.get("expires").is_some_and(Value::is_number);
    (scalar && expires).then_some(Value::Object(fields))
}

fn one(name: &str, tag: &Value) -> Vec<u8> {
    let mut m = Map::new();
    m.insert(name.to_string(), tag.clone());
    Value::Object(m).to_string().into_bytes()
}

fn retrieve(tags: &Map<String, Value>, name: Option<&str>) -> Answer {
    match name {
        None if tags.is_empty() => (400, Vec::new()),
        None => (200, Value::Object(tags.clone()).to_string().into_bytes()),
        Some(name) => match tags.get(name) {
            Some(tag) => (200, one(name, tag)),
            None => (400, Vec::new()),
        },
    }
}

fn load(path: &Path) -> std::io::Result<Loaded> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
        Ok(m) if m.len() > MAX_FILE => return Err(invalid("file too large")),
        Ok(m) if m.len() == 0 => return Ok(Loaded::Missing),
        Ok(_) => {}
    }
    let text = std::fs::read(path)?;
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(mut root)) => match root.remove("tags") {
            Some(Value::Object(tags)) => Ok(Loaded::Tags(tags)),
            None => Ok(Loaded::Tags(Map::new())),
            Some(_) => Err(invalid("\"tags\" is not an object")),
        },
        _ => Err(invalid("not a JSON object")),
    }
}

/// Writes `tags` (through a temporary file, so a crash never leaves half a file) and returns
/// `answer`, or 500 when the write fails.
fn saved(path: &Path, tags: Map<String, Value>, answer: Answer) -> Answer {
    let mut root = Map::new();
    root.insert("tags".into(), Value::Object(tags));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let written = std::fs::write(&tmp, Value::Object(root).to_string())
        .and_then(|()| std::fs::rename(&tmp, path));
    match written {
        Ok(()) => answer,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "CRUD config not written");
            (500, Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parodus_tag_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parodus_cfg.json");
        let store = TagStore::new(Some(path.clone()));
        let tag = br#"{"expires":1700000000,"owner":"ops"}"#;

        // Nothing stored yet: the file is missing.
        assert_eq!(store.handle(TagOp::Retrieve, None, b"").0, 500);
        assert_eq!(store.handle(TagOp::Delete, Some("a"), b"").0, 500);

        let (status, body) = store.handle(TagOp::Create, Some("a"), tag);
        assert_eq!(status, 201);
        assert_eq!(body, br#"{"a":{"expires":1700000000,"owner":"ops"}}"#);
        assert_eq!(store.handle(TagOp::Create, Some("a"), tag).0, 409);
        let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk["tags"]["a"]["expires"], 1_700_000_000);

        let (status, body) = store.handle(TagOp::Retrieve, Some("a"), b"");
        assert_eq!(
            (status, body.as_slice()),
            (200, &br#"{"a":{"expires":1700000000,"owner":"ops"}}"#[..])
        );
        assert_eq!(store.handle(TagOp::Retrieve, Some("b"), b"").0, 400);

        let (status, body) = store.handle(TagOp::Update, Some("a"), br#"{"expires":5}"#);
        assert_eq!(
            (status, body.as_slice()),
            (200, &br#"{"a":{"expires":5}}"#[..])
        );
        assert_eq!(
            store
                .handle(TagOp::Update, Some("b"), br#"{"expires":6}"#)
                .0,
            201
        );
        let (status, body) = store.handle(TagOp::Retrieve, None, b"");
        assert_eq!(
            (status, body.as_slice()),
            (200, &br#"{"a":{"expires":5},"b":{"expires":6}}"#[..])
        );

        assert_eq!(store.handle(TagOp::Delete, Some("a"), b"").0, 200);
        assert_eq!(store.handle(TagOp::Delete, Some("a"), b"").0, 400);
        assert_eq!(store.handle(TagOp::Delete, Some("b"), b"").0, 200);
        // An empty list is a bad request, as in parodus.
        assert_eq!(store.handle(TagOp::Retrieve, None, b"").0, 400);
    }

    #[test]
    fn bad_input_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tags.json");
        let store = TagStore::new(Some(path.clone()));
        for bad in [
            &b"not json"[..],
            br#"{"owner":"ops"}"#,
            br#"{"expires":"soon"}"#,
            br#"{"expires":1,"nested":{"x":1}}"#,
            br#"[1,2]"#,
        ] {
            assert_eq!(store.handle(TagOp::Create, Some("a"), bad).0, 400);
        }
        let big = format!(r#"{{"expires":1,"x":"{}"}}"#, "y".repeat(MAX_PAYLOAD));
        assert_eq!(
            store.handle(TagOp::Create, Some("a"), big.as_bytes()).0,
            400
        );
        assert_eq!(
            store.handle(TagOp::Create, None, br#"{"expires":1}"#).0,
            400
        );

        for i in 0..MAX_TAGS {
            let name = format!("t{i}");
            assert_eq!(
                store
                    .handle(TagOp::Create, Some(&name), br#"{"expires":1}"#)
                    .0,
                201
            );
        }
        assert_eq!(
            store
                .handle(TagOp::Create, Some("one-more"), br#"{"expires":1}"#)
                .0,
            400
        );

        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(store.handle(TagOp::Retrieve, None, b"").0, 500);
        assert_eq!(
            store
                .handle(TagOp::Create, Some("a"), br#"{"expires":1}"#)
                .0,
            500
        );

        // No file configured: tag CRUD fails, as in parodus.
        assert_eq!(
            TagStore::new(None).handle(TagOp::Retrieve, None, b"").0,
            500
        );
        // A file that cannot be written.
        let store = TagStore::new(Some(dir.path().join("no/such/dir/tags.json")));
        assert_eq!(
            store
                .handle(TagOp::Create, Some("a"), br#"{"expires":1}"#)
                .0,
            500
        );
    }
}
