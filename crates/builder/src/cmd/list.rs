//! `warren-build list TREE`: the images a tree publishes, as a table or JSON/YAML.

use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_image::tree::Tree;

#[derive(ClapArgs)]
pub struct Args {
    /// The published tree
    tree: PathBuf,
    /// table, json or yaml
    #[arg(long, default_value = "table", value_parser = ["table", "json", "yaml"])]
    format: String,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.tree.join("images").is_dir() {
        anyhow::bail!(
            "{}: not a published tree (no images/ in it; `warren-build publish` makes one)",
            a.tree.display()
        );
    }
    let tree = Tree::open(&a.tree)?;
    let rows: Vec<serde_json::Value> = tree
        .entries()?
        .iter()
        .map(|e| {
            serde_json::json!({
                "product": e.info.product(), "serial": e.info.serial, "lxc": e.has_lxc(), "incus": e.has_incus(),
                "description": e.info.description, "path": format!("/{}/", e.path),
            })
        })
        .collect();
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
        "yaml" => {
            for r in &rows {
                let mut first = true;
                for key in ["product", "serial", "lxc", "incus", "description", "path"] {
                    let v = &r[key];
                    let text = match v {
                        serde_json::Value::String(s) => serde_json::to_string(s)?,
                        other => other.to_string(),
                    };
                    println!("{}{key}: {text}", if first { "- " } else { "  " });
                    first = false;
                }
            }
        }
        _ => {
            println!(
                "{:<40} {:<15} {:<5} {:<5} DESCRIPTION",
                "PRODUCT", "SERIAL", "LXC", "INCUS"
            );
            for r in &rows {
                let yes = |k: &str| {
                    if r[k].as_bool().unwrap_or(false) {
                        "yes"
                    } else {
                        "-"
                    }
                };
                println!(
                    "{:<40} {:<15} {:<5} {:<5} {}",
                    r["product"].as_str().unwrap_or(""),
                    r["serial"].as_str().unwrap_or(""),
                    yes("lxc"),
                    yes("incus"),
                    r["description"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}
