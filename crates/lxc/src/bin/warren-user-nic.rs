//! `warren-user-nic`: the setuid-root helper that gives a regular user's container a veth on a
//! bridge `/etc/lxc/lxc-usernet` allows it (LXC's lxc-user-nic). The monitor of a regular user's
//! container runs `warren-user-nic create PID BRIDGE NAME`; it prints the host side's name.
//! Everything given on the command line is distrusted (see `warren_net::usernet`).
#![forbid(unsafe_code)]

use std::process::exit;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("warren-user-nic: {msg}");
    exit(1)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        fail("not installed setuid root (as root: chown root: warren-user-nic && chmod u+s warren-user-nic)");
    }
    // limits and a umask set by the caller to make us fail half-way don't apply
    warren_net::usernet::reset_limits();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pid, bridge, name) = match args.as_slice() {
        [cmd, pid, bridge, name] if cmd == "create" => match pid.parse::<i32>() {
            Ok(p) if p > 1 => (p, bridge.clone(), name.clone()),
            _ => fail(format!("\"{pid}\" is not a container process id")),
        },
        _ => fail("usage: warren-user-nic create PID BRIDGE NAME"),
    };
    let uid = nix::unistd::getuid();
    let Some(user) = nix::unistd::User::from_uid(uid).ok().flatten() else {
        fail(format!("uid {uid} has no passwd entry"));
    };
    let groups: Vec<String> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .chain(std::iter::once(nix::unistd::getgid()))
        .filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten())
        .map(|g| g.name)
        .collect();
    let req = warren_net::usernet::Request { pid, bridge, name };
    match warren_net::usernet::create_for_user(
        &req,
        uid.as_raw(),
        &user.name,
        &groups,
        &warren_net::usernet::read_config(),
        std::path::Path::new(warren_net::usernet::STATE_FILE),
    ) {
        Ok(host) => println!("{host}"),
        Err(e) => fail(e),
    }
}
