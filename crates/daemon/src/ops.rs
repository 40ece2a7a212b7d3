//! Operations (Incus's async tasks) and the events hub: an operation runs in a thread, its status
//! changes are sent to every events listener as `operation` events, and `GET
//! /1.0/operations/<id>[/wait]` reads or waits for it.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub class: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub status_code: u16,
    pub resources: Value,
    pub metadata: Value,
    pub err: String,
    pub may_cancel: bool,
    /// The project it works in (as its resources name it).
    pub project: String,
    /// When it reached a final state (finished operations are forgotten a while after).
    finished: Option<std::time::Instant>,
}

/// How long a finished operation can still be read.
const KEEP_FINISHED: std::time::Duration = std::time::Duration::from_secs(30);

/// What cancelling a running operation does.
pub type Canceller = Box<dyn FnOnce() + Send>;

pub fn status_text(code: u16) -> &'static str {
    match code {
        100 => "Operation created",
        103 => "Running",
        105 => "Pending",
        200 => "Success",
        400 => "Failure",
        401 => "Cancelled",
        _ => "Running",
    }
}

impl Operation {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id, "class": self.class, "description": self.description,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "status": status_text(self.status_code), "status_code": self.status_code,
            "resources": self.resources, "metadata": self.metadata,
            "may_cancel": self.may_cancel, "err": self.err, "location": "none",
        })
    }
}

#[derive(Default)]
pub struct Hub {
    ops: Mutex<HashMap<String, Operation>>,
    changed: Condvar,
    listeners: Mutex<Vec<Sender<(String, String)>>>,
    cancellers: Mutex<HashMap<String, Canceller>>,
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

impl Hub {
    /// A new events listener: (project, event as JSON text) of every event from now on.
    pub fn listen(&self) -> Receiver<(String, String)> {
        let (tx, rx) = channel();
        if let Ok(mut l) = self.listeners.lock() {
            l.push(tx);
        }
        rx
    }

    /// Sends an event of `kind` in `project` to the listeners of that project (dropping those
    /// gone); `to_all`: to every listener.
    pub fn emit(&self, kind: &str, project: &str, to_all: bool, metadata: Value) {
        let text = format!(
            "{}\n",
            json!({"type": kind, "timestamp": crate::time::now(), "metadata": metadata, "location": "none", "project": project})
        );
        let to = if to_all { "" } else { project };
        if let Ok(mut l) = self.listeners.lock() {
            l.retain(|tx| tx.send((to.to_string(), text.clone())).is_ok());
        }
    }

    /// A lifecycle event about `source` (an API path; its `?project=` is the event's project).
    pub fn lifecycle(&self, action: &str, source: &str, context: Value) {
        self.emit(
            "lifecycle",
            &project_in(source),
            false,
            json!({"action": action, "source": source, "context": context,
                   "requestor": {"username": "root", "protocol": "unix", "address": "@"}}),
        );
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Operation)) {
        let snapshot = {
            let Ok(mut ops) = self.ops.lock() else { return };
            let Some(op) = ops.get_mut(id) else { return };
            f(op);
            op.updated_at = crate::time::now();
            if op.status_code >= 200 {
                op.finished = Some(std::time::Instant::now());
            }
            op.clone()
        };
        self.changed.notify_all();
        // to every listener: a client waits for its operation whatever project it names
        self.emit("operation", &snapshot.project, true, snapshot.json());
    }

    /// Starts `work` as an operation; returns it as first reported (Running).
    pub fn run<F>(self: &Arc<Self>, description: &str, resources: Value, work: F) -> Operation
    where
        F: FnOnce() -> Result<Value, String> + Send + 'static,
    {
        self.run_with(new_id(), "task", Value::Null, description, resources, work)
    }

    /// A fresh operation id (for operations whose id must be known before they start).
    pub fn new_id() -> String {
        new_id()
    }

    /// `run` with the id, class and initial metadata given (exec: class websocket, the fds).
    pub fn run_with<F>(
        self: &Arc<Self>,
        id: String,
        class: &str,
        metadata: Value,
        description: &str,
        resources: Value,
        work: F,
    ) -> Operation
    where
        F: FnOnce() -> Result<Value, String> + Send + 'static,
    {
        let now = crate::time::now();
        let project = first_url(&resources).map_or("default".into(), |u| project_in(&u));
        let op = Operation {
            project,
            id,
            class: class.into(),
            description: description.into(),
            created_at: now.clone(),
            updated_at: now,
            status_code: 103,
            resources,
            metadata,
            err: String::new(),
            may_cancel: false,
            finished: None,
        };
        if let Ok(mut ops) = self.ops.lock() {
            ops.retain(|_, o| o.finished.map_or(true, |t| t.elapsed() < KEEP_FINISHED));
            ops.insert(op.id.clone(), op.clone());
        }
        crate::log::info(&format!("operation {} started: {description}", op.id));
        let hub = self.clone();
        let id = op.id.clone();
        std::thread::spawn(move || {
            let result = work();
            let cancelled = hub
                .cancellers
                .lock()
                .map(|mut c| c.remove(&id).is_none() && c.contains_key(&format!("{id}!")))
                .unwrap_or(false);
            if let Ok(mut c) = hub.cancellers.lock() {
                c.remove(&format!("{id}!"));
            }
            match &result {
                _ if cancelled => crate::log::info(&format!("operation {id} cancelled")),
                Ok(_) => crate::log::info(&format!("operation {id} done")),
                Err(e) => crate::log::warn(&format!("operation {id} failed: {e}")),
            }
            hub.update(&id, |op| match result {
                _ if cancelled => {
                    op.status_code = 401;
                    op.err = "Operation cancelled".into();
                }
                Ok(meta) => {
                    op.status_code = 200;
                    op.metadata = meta;
                }
                Err(e) => {
                    op.status_code = 400;
                    op.err = e;
                }
            });
        });
        op
    }

    /// Sets the project of an operation whose resources name none (an image upload or pull).
    pub fn set_project(&self, id: &str, project: &str) {
        if let Ok(mut ops) = self.ops.lock() {
            if let Some(op) = ops.get_mut(id) {
                op.project = project.to_string();
            }
        }
    }

    /// Replaces a running operation's metadata (a download's progress), telling the listeners.
    pub fn set_metadata(&self, id: &str, metadata: Value) {
        self.update(id, |op| {
            if op.status_code < 200 {
                op.metadata = metadata;
            }
        });
    }

    /// Makes a running operation cancellable: `cancel` ends its work early.
    pub fn cancellable(&self, id: &str, cancel: Canceller) {
        if let Ok(mut ops) = self.ops.lock() {
            if let Some(op) = ops.get_mut(id).filter(|o| o.status_code < 200) {
                op.may_cancel = true;
            } else {
                return;
            }
        }
        if let Ok(mut c) = self.cancellers.lock() {
            c.insert(id.to_string(), cancel);
        }
    }

    /// DELETE /1.0/operations/<id>: Err(status, message) when it can't be cancelled.
    pub fn cancel(&self, id: &str) -> Result<(), (u16, String)> {
        let op = self
            .get(id)
            .ok_or((404, "Operation not found".to_string()))?;
        if op.status_code >= 200 {
            return Err((400, "The operation has already finished".into()));
        }
        let cancel = self.cancellers.lock().ok().and_then(|mut c| {
            let f = c.remove(id)?;
            // marks it: the work's end is reported as Cancelled
            c.insert(format!("{id}!"), Box::new(|| {}));
            Some(f)
        });
        match cancel {
            Some(f) => {
                f();
                Ok(())
            }
            None => Err((400, "This operation can't be cancelled".into())),
        }
    }

    pub fn get(&self, id: &str) -> Option<Operation> {
        self.ops.lock().ok()?.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Operation> {
        self.ops
            .lock()
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until the operation is final (or `timeout` seconds pass; negative: forever).
    pub fn wait(&self, id: &str, timeout: i64) -> Option<Operation> {
        let deadline = (timeout >= 0)
            .then(|| std::time::Instant::now() + std::time::Duration::from_secs(timeout as u64));
        let mut ops = self.ops.lock().ok()?;
        loop {
            let op = ops.get(id)?.clone();
            if op.status_code >= 200 {
                return Some(op);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => std::time::Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Some(op);
            }
            ops = self.changed.wait_timeout(ops, left).ok()?.0;
        }
    }
}

/// The project an API path names (`?project=`), default if none.
pub fn project_in(url: &str) -> String {
    url.split_once('?')
        .and_then(|(_, q)| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("project="))
                .filter(|p| !p.is_empty())
        })
        .unwrap_or("default")
        .to_string()
}

/// The first API path among an operation's resources.
fn first_url(resources: &Value) -> Option<String> {
    resources
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .find_map(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_works_in_the_project_its_resources_name() {
        assert_eq!(project_in("/1.0/instances/c1?project=p1"), "p1");
        assert_eq!(project_in("/1.0/instances/c1?x=1&project=p2"), "p2");
        assert_eq!(project_in("/1.0/instances/c1"), "default");
        let r = json!({"instances": ["/1.0/instances/c1?project=p1"]});
        assert_eq!(
            first_url(&r).as_deref(),
            Some("/1.0/instances/c1?project=p1")
        );
        assert_eq!(first_url(&json!({})), None);
    }
}
