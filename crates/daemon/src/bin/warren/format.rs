//! Listings as incus prints them: `table` (boxed, headers centred, a cell may hold several
//! lines), `compact` (no borders), `csv`, and `json` / `yaml` of the API objects themselves.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Compact,
    Csv,
    Json,
    Yaml,
}

/// Prints `rows` under `headers`, or `objects` for json/yaml.
pub fn print(format: Format, headers: &[&str], rows: &[Vec<String>], objects: &Value) {
    match format {
        Format::Json => println!("{}", serde_json::to_string(objects).unwrap_or_default()),
        Format::Yaml => print!("{}", yaml(objects, 0, false)),
        Format::Csv => {
            for r in rows {
                let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
                println!("{}", cells.join(","));
            }
        }
        Format::Table => print!("{}", table(headers, rows, true)),
        Format::Compact => print!("{}", table(headers, rows, false)),
    }
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

pub fn table(headers: &[&str], rows: &[Vec<String>], boxed: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let w = c.lines().map(width).max().unwrap_or(0);
            if i < widths.len() {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    let rule: String = if boxed {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    } else {
        String::new()
    };
    let line = |cells: &[String], centre: bool| -> String {
        let mut s = String::new();
        if boxed {
            s.push('|');
        }
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = w - width(c);
            let (l, r) = if centre {
                (pad / 2, pad - pad / 2)
            } else {
                (0, pad)
            };
            s.push_str(&format!(" {}{c}{} ", " ".repeat(l), " ".repeat(r)));
            if boxed {
                s.push('|');
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&rule);
    out.push_str(&line(
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        true,
    ));
    out.push_str(&rule);
    for r in rows {
        let height = r
            .iter()
            .map(|c| c.lines().count().max(1))
            .max()
            .unwrap_or(1);
        for n in 0..height {
            let cells: Vec<String> = r
                .iter()
                .map(|c| c.lines().nth(n).unwrap_or("").to_string())
                .collect();
            out.push_str(&line(&cells, false));
        }
        if boxed {
            out.push_str(&rule);
        }
    }
    out
}

fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(|c: char| " -?:,[]{}#&*!|>'\"%@`".contains(c) || c.is_ascii_digit())
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with([' ', ':'])
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "~")
        && !s.contains('\n');
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// JSON as block YAML; `in_list`: the first key goes after a "- " already written.
pub fn yaml(v: &Value, indent: usize, in_list: bool) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match v {
        Value::Object(m) if m.is_empty() => out.push_str("{}\n"),
        Value::Object(m) => {
            for (i, (k, v)) in m.iter().enumerate() {
                let p = if in_list && i == 0 { "" } else { pad.as_str() };
                let key = yaml_scalar(k);
                match v {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{p}{key}:\n{}", yaml(v, indent + 2, false)))
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{p}{key}:\n{}", yaml(v, indent, false)))
                    }
                    Value::Object(_) => out.push_str(&format!("{p}{key}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{p}{key}: []\n")),
                    Value::String(s) => out.push_str(&format!("{p}{key}: {}\n", yaml_scalar(s))),
                    other => out.push_str(&format!("{p}{key}: {other}\n")),
                }
            }
        }
        Value::Array(a) if a.is_empty() => out.push_str("[]\n"),
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{pad}- {}", yaml(item, indent + 2, true)))
                    }
                    Value::String(s) => out.push_str(&format!("{pad}- {}\n", yaml_scalar(s))),
                    other => out.push_str(&format!("{pad}- {}", yaml(other, indent + 2, true))),
                }
            }
        }
        Value::String(s) => out.push_str(&format!("{}\n", yaml_scalar(s))),
        other => out.push_str(&format!("{other}\n")),
    }
    out
}

/// Sizes as incus prints them (`1.50MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

/// An RFC 3339 time as incus prints it (`2026/11/29 12:00 UTC`).
pub fn date(rfc3339: &str) -> String {
    if rfc3339.len() < 16 || rfc3339.starts_with("0001") {
        return String::new();
    }
    format!(
        "{}/{}/{} {} UTC",
        &rfc3339[0..4],
        &rfc3339[5..7],
        &rfc3339[8..10],
        &rfc3339[11..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_as_incus_draws_them() {
        let t = table(
            &["NAME", "STATE"],
            &[vec!["c1".into(), "RUNNING".into()]],
            true,
        );
        assert_eq!(
            t,
            "+------+---------+\n| NAME |  STATE  |\n+------+---------+\n| c1   | RUNNING |\n+------+---------+\n"
        );
    }

    #[test]
    fn yaml_of_nested_values() {
        let y = yaml(
            &json!({"config": {"limits.cpu": "2"}, "profiles": ["default"], "devices": {}}),
            0,
            false,
        );
        assert_eq!(
            y,
            "config:\n  limits.cpu: \"2\"\ndevices: {}\nprofiles:\n- default\n"
        );
    }
}
