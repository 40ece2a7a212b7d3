//! `lxc-autostart`: start, shut down, kill or reboot the containers marked `lxc.start.auto = 1`,
//! chosen by `lxc.group`, in `lxc.start.order` (lowest first, then by name), waiting
//! `lxc.start.delay` seconds after each start or reboot; `-L` only lists what would be done.

use anyhow::{anyhow, Result};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{list_names, lxcpath, Common, Container};
use warren_lxc_config::Config;
use warren_runtime::proto::{self, Request};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Kill the containers instead of starting them
    #[arg(short = 'k', long = "kill")]
    pub kill: bool,
    /// Only list the affected containers (and, when starting or rebooting, their delays)
    #[arg(short = 'L', long = "list")]
    pub list: bool,
    /// Reboot the containers instead of starting them
    #[arg(short = 'r', long = "reboot")]
    pub reboot: bool,
    /// Shut the containers down cleanly instead of starting them (killed after -t seconds)
    #[arg(short = 's', long = "shutdown")]
    pub shutdown: bool,
    /// Every auto-started container, whatever its groups
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Ignore lxc.start.auto: select every container matching the groups
    #[arg(short = 'A', long = "ignore-auto")]
    pub ignore_auto: bool,
    /// Comma separated groups to process, in this order; an empty entry ("web," or "") is the
    /// containers without a group. May be repeated. Default: only containers without a group
    #[arg(short = 'g', long = "groups", value_name = "GROUPS")]
    pub groups: Vec<String>,
    /// Seconds to wait for a clean shutdown before killing
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "TIMEOUT",
        default_value_t = 60,
        allow_negative_numbers = true
    )]
    pub timeout: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Shutdown,
    Kill,
    Reboot,
}

/// What autostart needs of one container's config.
struct Candidate {
    name: String,
    auto: bool,
    order: i64,
    delay: u64,
    groups: Vec<String>,
}

fn int_of(cfg: &Config, key: &str) -> i64 {
    cfg.get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn load(lxcpath: &Path, name: &str) -> Result<Candidate> {
    let path = lxcpath.join(name).join("config");
    let cfg = Config::load(&path).map_err(|e| anyhow!("{e}"))?;
    // lxc.group may list several groups in one value, blank separated, and may repeat
    let groups = cfg
        .get_all("lxc.group")
        .flat_map(|e| {
            e.value
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Candidate {
        name: name.to_string(),
        auto: int_of(&cfg, "lxc.start.auto") == 1,
        order: int_of(&cfg, "lxc.start.order"),
        delay: int_of(&cfg, "lxc.start.delay").max(0) as u64,
        groups,
    })
}

/// The groups to process in order, as LXC reads -g: split on commas, an empty entry meaning "no
/// group", duplicates dropped; no -g at all is the no-group selection alone.
fn parse_groups(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if args.is_empty() {
        out.push(String::new());
    }
    for a in args {
        for g in a.split(',') {
            let g = g.trim().to_string();
            if !out.contains(&g) {
                out.push(g);
            }
        }
    }
    out
}

fn in_group(c: &Candidate, group: &str) -> bool {
    if group.is_empty() {
        c.groups.is_empty()
    } else {
        c.groups.iter().any(|g| g == group)
    }
}

/// The containers to act on, in processing order: group by group as given, each group's
/// containers by lxc.start.order (lowest first) then name, each container once.
fn select(
    mut cands: Vec<Candidate>,
    groups: &[String],
    all: bool,
    ignore_auto: bool,
) -> Vec<Candidate> {
    cands.retain(|c| ignore_auto || c.auto);
    cands.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.name.cmp(&b.name)));
    if all {
        return cands;
    }
    let mut out = Vec::new();
    for g in groups {
        let (take, keep): (Vec<Candidate>, Vec<Candidate>) =
            cands.into_iter().partition(|c| in_group(c, g));
        out.extend(take);
        cands = keep;
    }
    out
}

pub fn run(args: Args) -> Result<i32> {
    let action = match (args.shutdown, args.kill, args.reboot) {
        (false, false, false) => Action::Start,
        (true, false, false) => Action::Shutdown,
        (false, true, false) => Action::Kill,
        (false, false, true) => Action::Reboot,
        _ => return Err(anyhow!("use only one of -s, -k and -r")),
    };
    if args.all && !args.groups.is_empty() && !args.common.quiet {
        eprintln!("warning: -a (all) overrides -g");
    }
    let lxcpath = lxcpath(&args.common.lxcpath);
    let mut cands = Vec::new();
    for name in list_names(&lxcpath) {
        match load(&lxcpath, &name) {
            Ok(c) => cands.push(c),
            Err(e) => eprintln!("warning: skipping {name}: {e}"),
        }
    }
    let chosen = select(
        cands,
        &parse_groups(&args.groups),
        args.all,
        args.ignore_auto,
    );
    let mut attempted = 0usize;
    let mut failed: Vec<String> = Vec::new();
    for c in &chosen {
        let container = Container {
            name: c.name.clone(),
            lxcpath: lxcpath.clone(),
            config_path: lxcpath.join(&c.name).join("config"),
        };
        let running = container.is_running();
        // starting applies to stopped containers, everything else to running ones
        if running == (action == Action::Start) {
            continue;
        }
        if args.list {
            match action {
                Action::Start | Action::Reboot => println!("{} {}", c.name, c.delay),
                Action::Shutdown | Action::Kill => println!("{}", c.name),
            }
            continue;
        }
        attempted += 1;
        let res = match action {
            Action::Start => start(&args.common, &lxcpath, &c.name),
            Action::Shutdown => stop(
                &container,
                Request::Stop {
                    timeout: args.timeout,
                    kill: false,
                },
            ),
            Action::Kill => stop(
                &container,
                Request::Stop {
                    timeout: 0,
                    kill: true,
                },
            ),
            Action::Reboot => reboot(&container),
        };
        match res {
            Ok(()) => {
                if matches!(action, Action::Start | Action::Reboot) && c.delay > 0 {
                    std::thread::sleep(Duration::from_secs(c.delay));
                }
            }
            Err(e) => {
                let verb = match action {
                    Action::Start => "starting",
                    Action::Shutdown => "shutting down",
                    Action::Kill => "killing",
                    Action::Reboot => "rebooting",
                };
                eprintln!("error: {verb} {}: {e:#}", c.name);
                failed.push(c.name.clone());
            }
        }
    }
    if failed.is_empty() {
        return Ok(0);
    }
    eprintln!("failed: {}", failed.join(", "));
    // as LXC: 1 when nothing succeeded, 2 for a partial failure
    Ok(if failed.len() == attempted { 1 } else { 2 })
}

/// Starts through this very binary's `start`, so autostart gets exactly what lxc-start does.
fn start(common: &Common, lxcpath: &Path, name: &str) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| anyhow!("find this program: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("start").arg("-n").arg(name).arg("-P").arg(lxcpath);
    if let Some(f) = &common.logfile {
        cmd.arg("-o").arg(f);
    }
    if let Some(l) = &common.logpriority {
        cmd.arg("-l").arg(l);
    }
    if common.quiet {
        cmd.arg("-q");
    }
    let status = cmd.status().map_err(|e| anyhow!("run start: {e}"))?;
    if !status.success() {
        return Err(anyhow!("start exited with {status}"));
    }
    Ok(())
}

/// A stop request, waiting until the container is STOPPED.
fn stop(c: &Container, req: Request) -> Result<()> {
    let Some(mut s) = proto::connect(&c.lxcpath, &c.name)? else {
        return Ok(()); // stopped meanwhile
    };
    proto::send_request(&mut s, &req)?;
    let (resp, _) = proto::read_response(&mut s)?;
    if !resp.ok {
        return Err(anyhow!("{}", resp.error.unwrap_or_default()));
    }
    proto::wait_closed(&mut s)?;
    Ok(())
}

fn reboot(c: &Container) -> Result<()> {
    let Some(mut s) = proto::connect(&c.lxcpath, &c.name)? else {
        return Err(anyhow!("not running"));
    };
    proto::send_request(&mut s, &Request::Reboot)?;
    let (resp, _) = proto::read_response(&mut s)?;
    if !resp.ok {
        return Err(anyhow!("{}", resp.error.unwrap_or_default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, auto: bool, order: i64, groups: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            auto,
            order,
            delay: 0,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn names(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.name.as_str()).collect()
    }

    fn sample() -> Vec<Candidate> {
        vec![
            cand("web", true, 5, &["web"]),
            cand("dns", true, 1, &["dns", "onboot"]),
            cand("b", true, 0, &[]),
            cand("a", true, 0, &[]),
            cand("z", true, -1, &[]),
            cand("off", false, 0, &[]),
        ]
    }

    #[test]
    fn default_is_the_no_group_containers_by_order_then_name() {
        let s = select(sample(), &parse_groups(&[]), false, false);
        assert_eq!(names(&s), ["z", "a", "b"]);
    }

    #[test]
    fn groups_in_given_order_and_empty_entry_is_no_group() {
        let s = select(sample(), &parse_groups(&["web,dns,".into()]), false, false);
        assert_eq!(names(&s), ["web", "dns", "z", "a", "b"]);
        let s = select(sample(), &parse_groups(&["onboot".into()]), false, false);
        assert_eq!(names(&s), ["dns"]);
    }

    #[test]
    fn all_and_ignore_auto() {
        let s = select(sample(), &parse_groups(&[]), true, false);
        assert_eq!(names(&s), ["z", "a", "b", "dns", "web"]);
        let s = select(sample(), &parse_groups(&[]), false, true);
        assert_eq!(names(&s), ["z", "a", "b", "off"]);
    }
}
