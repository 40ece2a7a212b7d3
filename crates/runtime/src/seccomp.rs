//! Seccomp: LXC's policy file format (`lxc.seccomp.profile`, versions 1 and 2: allow/deny lists,
//! actions, argument conditions, per-architecture sections, `reject_force_umount`) and loading it
//! with libseccomp, the compat architectures (x86, x32 on x86_64) included.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use std::path::{Path, PathBuf};

mod cache;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("{file}:{line}: {why}")]
    Parse {
        file: PathBuf,
        line: usize,
        why: String,
    },
    #[error("seccomp profile {file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp: {0}")]
    Load(String),
}

/// What a rule (or the filter's default) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Kill,
    Errno(i32),
    Trap,
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Action {
    fn to_scmp(self) -> ScmpAction {
        match self {
            Action::Kill => ScmpAction::KillProcess,
            Action::Errno(e) => ScmpAction::Errno(e),
            Action::Trap => ScmpAction::Trap,
            Action::Trace(v) => ScmpAction::Trace(v),
            Action::Allow => ScmpAction::Allow,
            Action::Log => ScmpAction::Log,
            Action::Notify => ScmpAction::Notify,
        }
    }
}

/// Which architectures a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchSel {
    All,
    Native,
    Compat,
    /// A section for an architecture that is neither this machine's nor its compat one.
    Other(String),
}

/// One argument condition: `[index,value,op]` or `[index,value,SCMP_CMP_MASKED_EQ,mask]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgCond {
    pub index: u32,
    pub value: u64,
    pub op: String,
    pub mask: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub arch: ArchSel,
    /// A syscall name (or, in version 1 profiles, a number).
    pub syscall: String,
    pub action: Action,
    pub args: Vec<ArgCond>,
}

/// A parsed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub file: PathBuf,
    /// The filter's default: Allow for deny lists, Kill (or the given action) for allow lists.
    pub default: Action,
    pub rules: Vec<Rule>,
}

fn parse_action(words: &[&str]) -> Result<(Action, usize), String> {
    let Some(first) = words.first() else {
        return Err("missing action".into());
    };
    let num = |i: usize, what: &str| -> Result<i64, String> {
        words
            .get(i)
            .ok_or_else(|| format!("{what} needs a number"))?
            .parse::<i64>()
            .map_err(|_| format!("invalid number \"{}\" for {what}", words[i]))
    };
    Ok(match *first {
        "kill" => (Action::Kill, 1),
        "trap" => (Action::Trap, 1),
        "allow" => (Action::Allow, 1),
        "log" => (Action::Log, 1),
        "notify" => (Action::Notify, 1),
        "errno" => {
            let n = num(1, "errno")?;
            if !(0..=4095).contains(&n) {
                return Err(format!("errno {n} is out of range 0-4095"));
            }
            (Action::Errno(n as i32), 2)
        }
        "trace" => {
            let n = num(1, "trace")?;
            (
                Action::Trace(u16::try_from(n).map_err(|_| format!("trace {n} is out of range"))?),
                2,
            )
        }
        other => return Err(format!("unknown action \"{other}\"")),
    })
}

fn parse_number(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let parsed = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    parsed.map_err(|_| format!("invalid number \"{s}\""))
}

fn parse_arg(tok: &str) -> Result<ArgCond, String> {
    let inner = tok
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("invalid argument condition \"{tok}\""))?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() < 3 {
        return Err(format!(
            "argument condition \"{tok}\" needs [index,value,op]"
        ));
    }
    let index: u32 = parts[0]
        .parse()
        .map_err(|_| format!("invalid argument index \"{}\"", parts[0]))?;
    if index > 5 {
        return Err(format!("argument index {index} is out of range 0-5"));
    }
    let op = parts[2].to_string();
    let known = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    if !known.contains(&op.as_str()) {
        return Err(format!("unknown comparison \"{op}\""));
    }
    let value = parse_number(parts[1])?;
    let mask = if op == "SCMP_CMP_MASKED_EQ" {
        parse_number(parts.get(3).ok_or("SCMP_CMP_MASKED_EQ needs a mask")?)?
    } else {
        0
    };
    Ok(ArgCond {
        index,
        value,
        op,
        mask,
    })
}

fn arch_section(name: &str) -> ArchSel {
    let native_x86_64 = cfg!(target_arch = "x86_64");
    match name {
        "all" => ArchSel::All,
        "x86_64" | "amd64" if native_x86_64 => ArchSel::Native,
        "x86" | "i386" | "i686" | "x32" if native_x86_64 => ArchSel::Compat,
        "arm64" | "aarch64" if cfg!(target_arch = "aarch64") => ArchSel::Native,
        "arm" | "armhf" | "armel" if cfg!(target_arch = "aarch64") => ArchSel::Compat,
        other => ArchSel::Other(other.to_string()),
    }
}

/// Parse a profile's text; `file` names it in errors.
pub fn parse(text: &str, file: &Path) -> Result<Profile, SeccompError> {
    let err = |line: usize, why: String| SeccompError::Parse {
        file: file.to_path_buf(),
        line,
        why,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty());
    let (ln, version) = lines
        .next()
        .ok_or_else(|| err(1, "empty seccomp profile".into()))?;
    let version: u32 = version.parse().map_err(|_| {
        err(
            ln,
            format!("the first line must be the version (1 or 2), not \"{version}\""),
        )
    })?;
    if !(1..=2).contains(&version) {
        return Err(err(
            ln,
            format!("unsupported profile version {version} (1 or 2)"),
        ));
    }
    let (ln, kind_line) = lines
        .next()
        .ok_or_else(|| err(ln, "missing the policy line (allowlist or denylist)".into()))?;
    let kind_words: Vec<&str> = kind_line.split_whitespace().collect();
    let allowlist = match kind_words.first().copied() {
        Some("allowlist" | "whitelist") => true,
        Some("denylist" | "blacklist") if version == 2 => false,
        Some(other) => {
            return Err(err(
                ln,
                format!("unknown policy \"{other}\" (allowlist or denylist)"),
            ))
        }
        None => return Err(err(ln, "missing policy".into())),
    };
    // allow lists: the default action (for unlisted syscalls) may follow; deny lists: the action
    // of rules that don't name one
    let given = if kind_words.len() > 1 {
        Some(parse_action(&kind_words[1..]).map_err(|w| err(ln, w))?.0)
    } else {
        None
    };
    let (default, rule_default) = if allowlist {
        (given.unwrap_or(Action::Kill), Action::Allow)
    } else {
        (Action::Allow, given.unwrap_or(Action::Kill))
    };
    let mut rules = Vec::new();
    let mut arch = ArchSel::All;
    for (ln, line) in lines {
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if sec.contains(',') {
                // an argument condition on a line of its own is not valid syntax
                return Err(err(
                    ln,
                    format!("\"{line}\" is not an architecture section"),
                ));
            }
            arch = arch_section(&sec.to_ascii_lowercase());
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let syscall = words[0].to_string();
        if version == 1 {
            parse_number(&syscall).map_err(|w| err(ln, w))?;
            rules.push(Rule {
                line: ln,
                arch: arch.clone(),
                syscall,
                action: Action::Allow,
                args: Vec::new(),
            });
            continue;
        }
        let mut rest = &words[1..];
        let action = if rest.is_empty() || rest[0].starts_with('[') {
            rule_default
        } else {
            let (a, used) = parse_action(rest).map_err(|w| err(ln, w))?;
            rest = &rest[used..];
            a
        };
        let args = rest
            .iter()
            .map(|t| parse_arg(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|w| err(ln, w))?;
        rules.push(Rule {
            line: ln,
            arch: arch.clone(),
            syscall,
            action,
            args,
        });
    }
    Ok(Profile {
        file: file.to_path_buf(),
        default,
        rules,
    })
}

/// Read and parse a profile file.
pub fn load_profile(path: &Path) -> Result<Profile, SeccompError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

fn compare(c: &ArgCond) -> ScmpArgCompare {
    let op = match c.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(c.mask),
        _ => ScmpCompareOp::Equal,
    };
    ScmpArgCompare::new(c.index, op, c.value)
}

fn add_rules(
    ctx: &mut ScmpFilterContext,
    profile: &Profile,
    sel: &[ArchSel],
) -> Result<(), SeccompError> {
    let default = profile.default;
    for rule in profile.rules.iter().filter(|r| sel.contains(&r.arch)) {
        if rule.action == default {
            // libseccomp refuses a rule that does what the default does; it would change nothing
            continue;
        }
        let load = |e: libseccomp::error::SeccompError| {
            SeccompError::Load(format!(
                "{}:{}: {}: {e}",
                profile.file.display(),
                rule.line,
                rule.syscall
            ))
        };
        if rule.syscall == "reject_force_umount" {
            // LXC's pseudo syscall: umount2(target, MNT_FORCE) fails with EACCES
            let sc = ScmpSyscall::from_name("umount2").map_err(load)?;
            let cond = ScmpArgCompare::new(
                1,
                ScmpCompareOp::MaskedEqual(libc::MNT_FORCE as u64),
                libc::MNT_FORCE as u64,
            );
            ctx.add_rule_conditional(ScmpAction::Errno(libc::EACCES), sc, &[cond])
                .map_err(load)?;
            continue;
        }
        let sc = if let Ok(n) = rule.syscall.parse::<i32>() {
            ScmpSyscall::from(n)
        } else {
            match ScmpSyscall::from_name(&rule.syscall) {
                Ok(s) => s,
                Err(_) => {
                    // a name this libseccomp doesn't know on this machine (LXC warns and goes on)
                    crate::warn!("seccomp: unknown syscall \"{}\" ignored", rule.syscall);
                    continue;
                }
            }
        };
        let conds: Vec<ScmpArgCompare> = rule.args.iter().map(compare).collect();
        if conds.is_empty() {
            ctx.add_rule(rule.action.to_scmp(), sc).map_err(load)?;
        } else {
            ctx.add_rule_conditional(rule.action.to_scmp(), sc, &conds)
                .map_err(load)?;
        }
    }
    Ok(())
}

/// Build the filter for this machine: native rules on the native architecture, compat rules on
/// the compat ones (x86 and x32 on x86_64), `[all]` rules on every one.
pub fn build(profile: &Profile) -> Result<ScmpFilterContext, SeccompError> {
    let e = |what: &str| {
        let what = what.to_string();
        move |err: libseccomp::error::SeccompError| SeccompError::Load(format!("{what}: {err}"))
    };
    let mut native = ScmpFilterContext::new(profile.default.to_scmp()).map_err(e("new filter"))?;
    // no_new_privs is lxc.no_new_privs's business, not a side effect of loading a filter
    native.set_ctl_nnp(false).map_err(e("filter attribute"))?;
    add_rules(&mut native, profile, &[ArchSel::All, ArchSel::Native])?;
    let compat_arches: &[ScmpArch] = if cfg!(target_arch = "x86_64") {
        &[ScmpArch::X86, ScmpArch::X32]
    } else if cfg!(target_arch = "aarch64") {
        &[ScmpArch::Arm]
    } else {
        &[]
    };
    if !compat_arches.is_empty() {
        let mut compat =
            ScmpFilterContext::new(profile.default.to_scmp()).map_err(e("new filter"))?;
        compat.set_ctl_nnp(false).map_err(e("filter attribute"))?;
        for a in compat_arches {
            compat.add_arch(*a).map_err(e("add compat architecture"))?;
        }
        compat
            .remove_arch(ScmpArch::Native)
            .map_err(e("compat filter"))?;
        add_rules(&mut compat, profile, &[ArchSel::All, ArchSel::Compat])?;
        native.merge(compat).map_err(e("merge compat filter"))?;
    }
    Ok(native)
}

/// Compile `profile` to the classic-BPF program the kernel takes (what [`install`] loads). Done
/// by the front end, so the monitor and the container's setup never carry libseccomp.
pub fn compile(profile: &Profile) -> Result<Vec<u8>, SeccompError> {
    use std::io::{Read, Seek};
    let ctx = build(profile)?;
    let memfd =
        nix::sys::memfd::memfd_create(c"warren-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| SeccompError::Load(format!("memfd: {e}")))?;
    let mut file = std::fs::File::from(memfd);
    ctx.export_bpf(&file)
        .map_err(|err| SeccompError::Load(format!("export the filter: {err}")))?;
    let mut program = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|e| SeccompError::Load(format!("read the filter: {e}")))?;
    Ok(program)
}

/// Read, parse and compile the profile at `path` (through the cache of compiled programs).
pub fn compile_file(path: &Path) -> Result<Vec<u8>, SeccompError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    compile_text(&text, path)
}

/// Parse and compile profile `text` (read from `file`, which errors name). A profile compiled
/// before comes from the cache: libseccomp's probing and compilation cost a start about 0.2 ms.
pub fn compile_text(text: &str, file: &Path) -> Result<Vec<u8>, SeccompError> {
    if let Some(program) = cache::lookup(text) {
        return Ok(program);
    }
    let program = compile(&parse(text, file)?)?;
    cache::store(text, &program);
    Ok(program)
}

/// Install a compiled filter in the calling process (inherited across fork and exec).
pub fn install(program: &[u8]) -> Result<(), SeccompError> {
    warren_sys::install_seccomp_filter(program)
        .map_err(|e| SeccompError::Load(format!("install the filter: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Profile, SeccompError> {
        parse(text, Path::new("test.seccomp"))
    }

    #[test]
    fn parses_lxc_denylist_with_sections_and_args() {
        let prof = p("2\ndenylist\nreject_force_umount # comment\n[all]\nkexec_load errno 1\nkeyctl errno 38\n[x86_64]\nmount errno 1 [2,0x20,SCMP_CMP_MASKED_EQ,0x20]\n[arm64]\nfoo\n").unwrap();
        assert_eq!(prof.default, Action::Allow);
        assert_eq!(prof.rules.len(), 5);
        assert_eq!(prof.rules[0].syscall, "reject_force_umount");
        assert_eq!(prof.rules[0].action, Action::Kill);
        assert_eq!(prof.rules[1].action, Action::Errno(1));
        assert_eq!(prof.rules[3].arch, ArchSel::Native);
        assert_eq!(prof.rules[3].args[0].mask, 0x20);
        assert!(matches!(prof.rules[4].arch, ArchSel::Other(_)));
    }

    #[test]
    fn allowlist_default_and_version1() {
        let prof = p("2\nallowlist errno 1\nread\nwrite\n").unwrap();
        assert_eq!(prof.default, Action::Errno(1));
        assert_eq!(prof.rules[0].action, Action::Allow);
        let v1 = p("1\nwhitelist\n0\n1\n").unwrap();
        assert_eq!(v1.rules.len(), 2);
        assert!(p("1\nwhitelist\nread\n").is_err());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = p("2\ndenylist\nkexec_load errno\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("test.seccomp:3:"), "{e}");
        let e = p("3\ndenylist\n").unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
        let e = p("2\nmaybelist\n").unwrap_err().to_string();
        assert!(e.contains("unknown policy"), "{e}");
        let e = p("2\ndenylist\nmount errno 1 [9,0,SCMP_CMP_EQ]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn shipped_style_profile_builds_a_filter() {
        let prof = p("2\ndenylist\nreject_force_umount\n[all]\nkexec_load errno 1\nopen_by_handle_at errno 1\nnot_a_syscall errno 1\n").unwrap();
        build(&prof).unwrap();
        let program = compile(&prof).unwrap();
        assert!(!program.is_empty() && program.len().is_multiple_of(8));
    }
}
