//! Incus's response envelope (sync, async, error), as the client reads it.

use crate::http::Response;
use serde_json::{json, Value};

/// An API error: HTTP status and the message the client prints after "Error: ".
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn forbidden(what: impl Into<String>) -> ApiError {
        ApiError::new(403, what)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(404, what)
    }
    pub fn bad_request(what: impl Into<String>) -> ApiError {
        ApiError::new(400, what)
    }
}

/// A string field of a request body ("" when missing or not a string).
pub fn text(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn json_response(status: u16, body: &Value, extra: Vec<(String, String)>) -> Response {
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    headers.extend(extra);
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    Response {
        status,
        headers,
        body: bytes,
        file: None,
    }
}

pub fn sync(metadata: Value) -> Response {
    sync_with(200, metadata, Vec::new())
}

/// A sync response with an ETag (single objects: the client sends it back as If-Match).
pub fn sync_etag(metadata: Value) -> Response {
    let tag = etag(&metadata);
    sync_with(200, metadata, vec![("ETag".into(), format!("\"{tag}\""))])
}

pub fn sync_with(status: u16, metadata: Value, headers: Vec<(String, String)>) -> Response {
    json_response(
        status,
        &json!({"type": "sync", "status": "Success", "status_code": 200, "operation": "", "error_code": 0, "error": "", "metadata": metadata}),
        headers,
    )
}

pub fn error(e: &ApiError) -> Response {
    json_response(
        e.status,
        &json!({"type": "error", "status": "", "status_code": 0, "operation": "", "error_code": e.status, "error": e.message, "metadata": null}),
        Vec::new(),
    )
}

/// The opaque ETag of an object: a hash of its JSON.
pub fn etag(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(serde_json::to_vec(v).unwrap_or_default()))
}

/// 202 with the operation (async responses).
pub fn async_op(op: &crate::ops::Operation) -> Response {
    json_response(
        202,
        &json!({"type": "async", "status": "Operation created", "status_code": 100,
                "operation": format!("/1.0/operations/{}", op.id), "error_code": 0, "error": "", "metadata": op.json()}),
        vec![("Location".into(), format!("/1.0/operations/{}", op.id))],
    )
}
