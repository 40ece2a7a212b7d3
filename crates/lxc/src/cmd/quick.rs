//! The plain command lines of the short-lived commands scripts run most (start, wait, stop), read
//! without clap: building and running clap's parser costs each run about 80 µs, mostly page faults
//! in its code, a tenth of the whole run. Only what is unambiguous is read here (each option on
//! its own, a value that doesn't start with `-`, no option twice); anything else, `--help` and
//! every error included, goes to clap, which gives the same result or the error users know.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{start, stop, wait, Cli, Cmd};
use crate::common::Common;

/// The parse of `args` (argv[0], subcommand, options), or None: let clap do it.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let words: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    let (sub, rest) = words.get(1..)?.split_first()?;
    let cmd = match *sub {
        "start" => Cmd::Start(start_args(rest)?),
        "wait" => Cmd::Wait(wait_args(rest)?),
        "stop" => Cmd::Stop(stop_args(rest)?),
        _ => return None,
    };
    Some(Cli { cmd })
}

/// One option of a command line: its long name (the key it is known by here) and its value.
struct Opt<'a> {
    long: &'static str,
    value: Option<&'a str>,
}

/// Splits `words` into options and at most one positional, after the options the command knows
/// (`(short, long, takes a value)`). Words after `--` are returned apart when `dashdash` is true.
/// None: something for clap to judge.
#[allow(clippy::type_complexity)]
fn split<'a>(
    words: &[&'a str],
    known: &[(char, &'static str, bool)],
    dashdash: bool,
) -> Option<(Vec<Opt<'a>>, Option<&'a str>, Vec<&'a str>)> {
    let mut opts: Vec<Opt<'a>> = Vec::new();
    let mut positional = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        let (spec, attached) = if w == "--" {
            if !dashdash {
                return None;
            }
            return Some((opts, positional, words[i..].to_vec()));
        } else if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            (known.iter().find(|k| k.1 == name)?, value)
        } else if let Some(short) = w.strip_prefix('-') {
            let mut chars = short.chars();
            let c = chars.next()?;
            let tail = chars.as_str();
            let spec = known.iter().find(|k| k.0 == c)?;
            (spec, (!tail.is_empty()).then_some(tail))
        } else {
            if positional.replace(w).is_some() {
                return None;
            }
            continue;
        };
        let (_, long, takes_value) = *spec;
        let value = match (takes_value, attached) {
            (false, None) => None,
            (false, Some(_)) => return None,
            (true, Some(v)) => Some(v),
            (true, None) => {
                let v = *words.get(i)?;
                i += 1;
                Some(v)
            }
        };
        // (clap's own rules for a value like "-1" or "" are its business)
        if value.is_some_and(|v| v.is_empty() || v.starts_with('-')) {
            return None;
        }
        // given twice: clap refuses it, except for what it collects (--define)
        if long != "define" && opts.iter().any(|o| o.long == long) {
            return None;
        }
        opts.push(Opt { long, value });
    }
    Some((opts, positional, Vec::new()))
}

const COMMON: [(char, &str, bool); 6] = [
    ('n', "name", true),
    ('P', "lxcpath", true),
    ('f', "rcfile", true),
    ('o', "logfile", true),
    ('l', "logpriority", true),
    ('q', "quiet", false),
];

/// The common options among `opts` (the others are left for the caller).
fn common<'a>(opts: &[Opt<'a>], positional: Option<&str>) -> Option<(Common, Vec<&'a str>)> {
    let mut c = Common::default();
    let mut others = Vec::new();
    for o in opts {
        let v = || o.value.map(str::to_string);
        match o.long {
            "name" => c.name = v(),
            "lxcpath" => c.lxcpath = v().map(PathBuf::from),
            "rcfile" => c.rcfile = v().map(PathBuf::from),
            "logfile" => c.logfile = v().map(PathBuf::from),
            "logpriority" => c.logpriority = v(),
            "quiet" => c.quiet = true,
            other => others.push(other),
        }
    }
    // a name given both ways: clap's conflict error
    if c.name.is_some() && positional.is_some() {
        return None;
    }
    Some((c, others))
}

fn with<const N: usize>(extra: [(char, &'static str, bool); N]) -> Vec<(char, &'static str, bool)> {
    COMMON.iter().copied().chain(extra).collect()
}

fn value<'a>(opts: &[Opt<'a>], long: &str) -> Option<&'a str> {
    opts.iter().find(|o| o.long == long).and_then(|o| o.value)
}

fn start_args(words: &[&str]) -> Option<start::Args> {
    let known = with([
        ('F', "foreground", false),
        ('d', "daemon", false),
        ('p', "pidfile", true),
        ('s', "define", true),
    ]);
    let (opts, positional, command) = split(words, &known, true)?;
    let (common, others) = common(&opts, positional)?;
    Some(start::Args {
        common,
        foreground: others.contains(&"foreground"),
        daemon: others.contains(&"daemon"),
        pidfile: value(&opts, "pidfile").map(PathBuf::from),
        define: opts
            .iter()
            .filter(|o| o.long == "define")
            .filter_map(|o| o.value.map(str::to_string))
            .collect(),
        positional: positional.map(str::to_string),
        command: command.iter().map(|s| s.to_string()).collect(),
    })
}

fn wait_args(words: &[&str]) -> Option<wait::Args> {
    let known = with([('s', "state", true), ('t', "timeout", true)]);
    let (opts, positional, _) = split(words, &known, false)?;
    let (common, _) = common(&opts, positional)?;
    Some(wait::Args {
        common,
        // (required: without it, clap's error)
        state: value(&opts, "state")?.to_string(),
        timeout: match value(&opts, "timeout") {
            Some(t) => t.parse().ok()?,
            None => -1,
        },
        positional: positional.map(str::to_string),
    })
}

fn stop_args(words: &[&str]) -> Option<stop::Args> {
    let known = with([
        ('k', "kill", false),
        ('r', "reboot", false),
        ('t', "timeout", true),
        // (long only: no argv word can hold a NUL, so this short form never matches)
        ('\0', "nokill", false),
        ('W', "nowait", false),
    ]);
    let (opts, positional, _) = split(words, &known, false)?;
    let (common, others) = common(&opts, positional)?;
    Some(stop::Args {
        common,
        kill: others.contains(&"kill"),
        reboot: others.contains(&"reboot"),
        timeout: match value(&opts, "timeout") {
            Some(t) => t.parse().ok()?,
            None => 60,
        },
        nokill: others.contains(&"nokill"),
        nowait: others.contains(&"nowait"),
        positional: positional.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(line: &str) -> Vec<OsString> {
        std::iter::once("warren-lxc")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    /// Every line this parser takes, it reads as clap does.
    #[test]
    fn what_it_reads_it_reads_as_clap_does() {
        let lines = [
            "start",
            "start -n c1",
            "start -n c1 -P /tmp/x -q",
            "start --name c1 --lxcpath=/tmp/x --quiet",
            "start -nc1 -P/tmp/x -d",
            "start c1 -F",
            "start -n c1 -o /tmp/log -l DEBUG -f /tmp/conf",
            "start -n c1 -s lxc.uts.name=x --define lxc.tty.max=2 -p /tmp/pid",
            "start -n c1 -- /bin/sh -c true",
            "start -n c1 --",
            "wait -n c1 -s RUNNING",
            "wait -P /tmp/x -n c1 --state=RUNNING|FROZEN -t 5",
            "wait c1 -s STOPPED --timeout 0",
            "stop -n c1 -k",
            "stop -n c1 -P /tmp/x -k -q",
            "stop c1 -r",
            "stop -n c1 -t 5 --nokill -W",
            "stop --name=c1 --kill --nowait",
        ];
        for line in lines {
            let args = argv(line);
            let quick = parse(&args).unwrap_or_else(|| panic!("not read: {line}"));
            let clap = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(format!("{quick:?}"), format!("{clap:?}"), "{line}");
        }
    }

    /// What is unclear or wrong is left to clap (which reads it, or says what is wrong).
    #[test]
    fn what_is_not_plain_goes_to_clap() {
        let lines = [
            "start --help",
            "start -h",
            "start -n c1 -n c2",
            "start -n c1 c2",
            "start c1 c2",
            "start -n",
            "start -n -q",
            "start -qd -n c1",
            "start -n c1 --unknown",
            "start -n c1 -x",
            "start -n c1 --quiet=yes",
            "wait -n c1",
            "wait -n c1 -s RUNNING -t -1",
            "wait -n c1 -s RUNNING -t soon",
            "wait -n c1 -s RUNNING -- x",
            "stop -n c1 -k -k",
            "stop -n c1 -t -1",
            "stop -n c1 -kq",
            "ls -f",
            "attach -n c1",
            "--version",
        ];
        for line in lines {
            assert!(
                parse(&argv(line)).is_none(),
                "read, but should go to clap: {line}"
            );
        }
        assert!(parse(&[OsString::from("warren-lxc")]).is_none());
    }
}
