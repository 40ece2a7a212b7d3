//! `lxc-ls`: list containers, plain (in columns), one per line (-1), or as LXC's fancy table (-f,
//! -F COLUMNS); `--format json` for scripts.

use anyhow::{anyhow, bail, Result};

use crate::common::{list_names, lxcpath, Base, Common, Container};
use crate::status::{status, Status};
use warren_runtime::proto::State;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub base: Base,
    /// One container per line
    #[arg(short = '1', long = "line")]
    pub line: bool,
    /// Fancy table output
    #[arg(short = 'f', long = "fancy")]
    pub fancy: bool,
    /// Comma separated list of columns for the fancy output: NAME, STATE, PID, RAM, SWAP, AUTOSTART, GROUPS, INTERFACE, IPV4, IPV6, UNPRIVILEGED
    #[arg(short = 'F', long = "fancy-format", value_name = "COLUMNS")]
    pub fancy_format: Option<String>,
    /// Only running containers
    #[arg(long = "running")]
    pub running: bool,
    /// Only stopped containers
    #[arg(long = "stopped")]
    pub stopped: bool,
    /// Only frozen containers
    #[arg(long = "frozen")]
    pub frozen: bool,
    /// Only active (running or frozen) containers
    #[arg(long = "active")]
    pub active: bool,
    /// Only containers in these groups (comma separated)
    #[arg(short = 'g', long = "groups", value_name = "GROUPS")]
    pub groups: Option<String>,
    /// Output format: table (default) or json
    #[arg(long = "format", value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Only names matching this regular expression (a plain substring match is used)
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

const DEFAULT_COLUMNS: [&str; 7] = [
    "NAME",
    "STATE",
    "AUTOSTART",
    "GROUPS",
    "IPV4",
    "IPV6",
    "UNPRIVILEGED",
];
const ALL_COLUMNS: [&str; 11] = [
    "NAME",
    "STATE",
    "PID",
    "RAM",
    "SWAP",
    "AUTOSTART",
    "GROUPS",
    "INTERFACE",
    "IPV4",
    "IPV6",
    "UNPRIVILEGED",
];

fn cell(st: &Status, col: &str) -> String {
    let dash = |v: String| if v.is_empty() { "-".to_string() } else { v };
    let running = st.pid.is_some();
    match col {
        "NAME" => st.name.clone(),
        "STATE" => st.state.to_string(),
        "PID" => st.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        "RAM" if running => format!("{:.2}MB", st.memory_bytes.unwrap_or(0) as f64 / 1048576.0),
        "SWAP" if running => format!("{:.2}MB", st.swap_bytes.unwrap_or(0) as f64 / 1048576.0),
        "AUTOSTART" => if st.autostart { "1" } else { "0" }.to_string(),
        "GROUPS" => dash(st.groups.join(", ")),
        "INTERFACE" => dash(
            st.interfaces
                .iter()
                .map(|i| i.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        "IPV4" => dash(st.ipv4.join(", ")),
        "IPV6" => dash(st.ipv6.join(", ")),
        "UNPRIVILEGED" => st.unprivileged.to_string(),
        _ => "-".to_string(),
    }
}

pub fn run(args: Args) -> Result<i32> {
    let lxcpath = lxcpath(&args.base.lxcpath);
    let want_groups: Option<Vec<&str>> = args.groups.as_deref().map(|g| g.split(',').collect());
    let mut rows = Vec::new();
    for name in list_names(&lxcpath) {
        if let Some(f) = &args.filter {
            if !name.contains(f.as_str()) {
                continue;
            }
        }
        let c = Container::locate(
            &Common {
                name: Some(name.clone()),
                lxcpath: Some(lxcpath.clone()),
                ..Default::default()
            },
            None,
            false,
        )?;
        let st = status(&c);
        let active = matches!(
            st.state,
            State::Running | State::Frozen | State::Freezing | State::Starting | State::Stopping
        );
        if (args.running && st.state != State::Running)
            || (args.stopped && st.state != State::Stopped)
            || (args.frozen && st.state != State::Frozen)
            || (args.active && !active)
        {
            continue;
        }
        if let Some(g) = &want_groups {
            if !st.groups.iter().any(|sg| g.contains(&sg.as_str())) {
                continue;
            }
        }
        rows.push(st);
    }
    match args.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(0);
        }
        "table" => {}
        other => bail!("unknown --format \"{other}\" (use table or json)"),
    }
    if args.fancy || args.fancy_format.is_some() {
        let cols: Vec<String> = match &args.fancy_format {
            Some(f) => f
                .split(',')
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            None => DEFAULT_COLUMNS.iter().map(|s| s.to_string()).collect(),
        };
        for c in &cols {
            if !ALL_COLUMNS.contains(&c.as_str()) {
                return Err(anyhow!(
                    "invalid column \"{c}\" for -F (valid: {})",
                    ALL_COLUMNS.join(", ")
                ));
            }
        }
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|st| cols.iter().map(|c| cell(st, c)).collect())
            .collect();
        let widths: Vec<usize> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                table
                    .iter()
                    .map(|r| r[i].len())
                    .chain(std::iter::once(c.len()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // LXC pads every column, the last one too, and separates them with one space
        let print_row = |r: &[String]| {
            let line: String = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$} "))
                .collect();
            println!("{line}");
        };
        print_row(&cols);
        for r in &table {
            print_row(r);
        }
        return Ok(0);
    }
    if args.line {
        for st in &rows {
            println!("{}", st.name);
        }
        return Ok(0);
    }
    // plain: names padded to the widest, as LXC's column layout does for a narrow list
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for st in &rows {
        println!("{:<w$}", st.name);
    }
    Ok(0)
}
