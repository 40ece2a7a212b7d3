//! `warren operation list`, `show ID`, `delete ID` (cancel).

use crate::client::{self, sync};
use crate::format::{self, Format};
use anyhow::Result;

pub fn list(format: Format) -> Result<i32> {
    let ops = client::sync("GET", "/1.0/operations?recursion=1", None)?;
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    for list in ops.as_object().into_iter().flat_map(|m| m.values()) {
        for o in list.as_array().into_iter().flatten() {
            rows.push(vec![
                o["id"].as_str().unwrap_or("").to_string(),
                o["class"].as_str().unwrap_or("").to_uppercase(),
                o["description"].as_str().unwrap_or("").to_string(),
                o["status"].as_str().unwrap_or("").to_uppercase(),
                if o["may_cancel"] == true { "YES" } else { "NO" }.into(),
                format::date(o["created_at"].as_str().unwrap_or("")),
            ]);
            objects.push(o.clone());
        }
    }
    format::print(
        format,
        &[
            "ID",
            "TYPE",
            "DESCRIPTION",
            "STATUS",
            "CANCELABLE",
            "CREATED",
        ],
        &rows,
        &serde_json::json!(objects),
    );
    Ok(0)
}

pub fn show(id: &str) -> Result<i32> {
    let op = sync("GET", &format!("/1.0/operations/{id}"), None)?;
    print!("{}", format::yaml(&op, 0, false));
    Ok(0)
}

pub fn delete(id: &str) -> Result<i32> {
    sync("DELETE", &format!("/1.0/operations/{id}"), None)?;
    let _ = client::request("GET", &format!("/1.0/operations/{id}/wait?timeout=5"), None);
    Ok(0)
}
