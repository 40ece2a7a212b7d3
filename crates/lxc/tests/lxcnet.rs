//! `warren-lxc net` (LXC's lxc-net) for real: a bridge, dnsmasq and nftables NAT from an
//! lxc-net file of the test's own (unique bridge and subnet, dnsmasq without upstream servers,
//! and a drop rule for forwarded traffic leaving the bridge), a busybox container getting its
//! lease, and `stop` taking away exactly what `start` made.

use std::path::Path;

use warren_testutil::{
    require_root, unique_name, wait_until, LinkGuard, Lxc, LxcNet, RegularUser, UsernetAllowance,
    TEST_USER,
};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_container_gets_a_lease_and_stop_removes_what_start_made() {
    if !require_root("a_container_gets_a_lease_and_stop_removes_what_start_made") {
        return;
    }
    let net = LxcNet::new(BIN);
    let forward_before =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("ip_forward");
    ok(net.run("start"));
    assert!(net.bridge_exists());
    // NAT verified by reading the ruleset back, never by sending traffic
    let table = net.table().expect("nft table");
    assert!(
        table.contains(&format!(
            "ip saddr {0}.0/24 ip daddr != {0}.0/24 masquerade",
            net.subnet
        )),
        "{table}"
    );
    let status = ok(net.run("status"));
    assert!(
        status.contains("running") && status.contains("dnsmasq pid"),
        "{status}"
    );

    let lxc = Lxc::new(BIN);
    let name = unique_name("dh");
    lxc.busybox(
        &name,
        &[
            "lxc.net.0.type = veth",
            &format!("lxc.net.0.link = {}", net.bridge),
            "lxc.net.0.flags = up",
            "lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx",
        ],
    );
    lxc.ok("start", &["-n", &name]);
    let line = net.lease_of(&name);
    let ip = line.split_whitespace().nth(2).expect("leased address");
    assert!(ip.starts_with(&format!("{}.", net.subnet)), "{line}");
    // the container sees its address (once udhcpc's script has set what dnsmasq granted) and
    // reaches the host on the bridge
    wait_until(10, || {
        lxc.run(
            "attach",
            &[
                "-n",
                &name,
                "--",
                "sh",
                "-c",
                "ip -4 addr show eth0 | grep -q inet",
            ],
        )
        .status
        .success()
    });
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            &format!("ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; ping -c1 -W2 {}.1 >/dev/null && echo reached", net.subnet),
        ],
    );
    assert_eq!(out.trim(), format!("inet {ip}\nreached"), "{out}");
    let ls = lxc.ok("ls", &["-f"]);
    assert!(ls.contains(ip), "{ls}");
    lxc.ok("stop", &["-n", &name, "-k"]);

    ok(net.run("stop"));
    assert!(!net.bridge_exists(), "the bridge outlived stop");
    assert!(net.table().is_none(), "the nftables table outlived stop");
    assert!(!net.dir.path().join("run").join(&net.bridge).exists());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("ip_forward"),
        forward_before,
        "ip_forward not restored"
    );
}

#[test]
fn a_bridge_that_is_not_ours_is_left_alone() {
    if !require_root("a_bridge_that_is_not_ours_is_left_alone") {
        return;
    }
    let net = LxcNet::new(BIN);
    // someone else's bridge of that name (a real lxc-net, say)
    let mut nl = warren_net::Netlink::open().expect("netlink");
    nl.create_bridge(&net.bridge).expect("bridge");
    let _gone = LinkGuard(net.bridge.clone());
    let out = net.run("start");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was not made by warren-lxc net") && err.contains("nothing changed"),
        "{err}"
    );
    assert!(net.table().is_none(), "a table was made anyway");
    let idx = nl.link_index(&net.bridge).expect("still there");
    assert!(nl
        .addresses(Some(idx))
        .expect("addresses")
        .iter()
        .all(|a| !a.addr.is_ipv4()));
    // and stop refuses to touch it
    let out = net.run("stop");
    assert_eq!(out.status.code(), Some(1));
    assert!(net.bridge_exists());
}

#[test]
fn a_bad_lxc_net_value_names_file_line_and_variable() {
    if !require_root("a_bad_lxc_net_value_names_file_line_and_variable") {
        return;
    }
    let net = LxcNet::new(BIN);
    let f = net.dir.path().join("lxc-net");
    let text = std::fs::read_to_string(&f).expect("read");
    std::fs::write(
        &f,
        text.replace("LXC_DHCP_MAX=\"253\"", "LXC_DHCP_MAX=\"lots\""),
    )
    .expect("write");
    let out = net.run("start");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:8: LXC_DHCP_MAX", f.display())),
        "{err}"
    );
    assert!(!net.bridge_exists());
}

#[test]
fn a_regular_users_container_gets_a_lease_through_lxc_usernet() {
    let bins = [
        Path::new(BIN),
        Path::new(env!("CARGO_BIN_EXE_warren-monitor")),
        Path::new(env!("CARGO_BIN_EXE_warren-user-nic")),
    ];
    let Some(u) = RegularUser::new(
        "a_regular_users_container_gets_a_lease_through_lxc_usernet",
        &bins,
    ) else {
        return;
    };
    let net = LxcNet::new(BIN);
    ok(net.run("start"));
    let _allow = UsernetAllowance::new(&format!("{TEST_USER} veth {} 1", net.bridge));
    let base = warren_testutil::subid_start(TEST_USER, "/etc/subuid").expect("subuid");
    let gbase = warren_testutil::subid_start(TEST_USER, "/etc/subgid").expect("subgid");
    u.write_default_conf(&format!(
        "lxc.idmap = u 0 {base} 65536\nlxc.idmap = g 0 {gbase} 65536\n\
         lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.flags = up\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\n",
        net.bridge
    ));
    let name = unique_name("ud");
    u.ok("create", &["-n", &name, "-t", "busybox"]);
    u.ok("start", &["-n", &name]);
    net.lease_of(&name);
    u.ok("stop", &["-n", &name, "-k"]);
    u.ok("destroy", &["-n", &name]);
}

#[test]
fn dnsmasq_is_restarted_when_it_dies() {
    if !require_root("dnsmasq_is_restarted_when_it_dies") {
        return;
    }
    let net = LxcNet::new(BIN);
    ok(net.run("start"));
    let pid_file = net
        .dir
        .path()
        .join("run")
        .join(&net.bridge)
        .join("dnsmasq.pid");
    let pid_of = || -> Option<i32> { std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok() };
    let first = pid_of().expect("dnsmasq pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill dnsmasq");
    let mut again = None;
    wait_until(5, || {
        again = pid_of().filter(|p| *p != first && Path::new(&format!("/proc/{p}")).exists());
        again.is_some()
    });
    let again = again.expect("dnsmasq was not restarted");
    let status = ok(net.run("status"));
    assert!(
        status.contains(&format!("dnsmasq pid {again}")) && status.contains("supervised by"),
        "{status}"
    );
    ok(net.run("stop"));
    assert!(
        !std::path::Path::new(&format!("/proc/{again}")).exists() || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            !std::path::Path::new(&format!("/proc/{again}")).exists()
        },
        "dnsmasq outlived stop"
    );
}

#[test]
fn a_static_lease_by_container_name_from_lxc_dhcp_confile() {
    if !require_root("a_static_lease_by_container_name_from_lxc_dhcp_confile") {
        return;
    }
    let net = LxcNet::new(BIN);
    let name = unique_name("st");
    let confile = net.dir.path().join("dnsmasq.conf");
    std::fs::write(&confile, format!("dhcp-host={name},{}.77\n", net.subnet)).expect("confile");
    let f = net.dir.path().join("lxc-net");
    let mut text = std::fs::read_to_string(&f).expect("read");
    text.push_str(&format!("LXC_DHCP_CONFILE=\"{}\"\n", confile.display()));
    std::fs::write(&f, text).expect("write");
    ok(net.run("start"));
    let lxc = Lxc::new(BIN);
    lxc.busybox(
        &name,
        &[
            "lxc.net.0.type = veth",
            &format!("lxc.net.0.link = {}", net.bridge),
            "lxc.net.0.flags = up",
        ],
    );
    lxc.ok("start", &["-n", &name]);
    let want = format!("{}.77", net.subnet);
    let line = net.lease_of(&name);
    assert_eq!(
        line.split_whitespace().nth(2),
        Some(want.as_str()),
        "{line}"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn ipv6_router_advertisements_give_the_container_an_address() {
    if !require_root("ipv6_router_advertisements_give_the_container_an_address") {
        return;
    }
    let net = LxcNet::new(BIN);
    // a ULA prefix of the test's own
    let k = std::process::id() % 0xffff;
    let prefix = format!("fd42:{k:x}:77");
    let f = net.dir.path().join("lxc-net");
    let mut text = std::fs::read_to_string(&f).expect("read");
    text.push_str(&format!(
        "LXC_IPV6_ADDR=\"{prefix}::1\"\nLXC_IPV6_MASK=\"64\"\nLXC_IPV6_NETWORK=\"{prefix}::/64\"\nLXC_IPV6_NAT=\"true\"\n"
    ));
    std::fs::write(&f, text).expect("write");
    ok(net.run("start"));
    assert!(
        warren_net::nft::list_table("ip6", &format!("warren_lxcnet_{}", net.bridge))
            .expect("nft")
            .is_some_and(|t| t.contains("masquerade")),
        "no IPv6 NAT table"
    );
    let lxc = Lxc::new(BIN);
    let name = unique_name("v6");
    lxc.busybox(
        &name,
        &[
            "lxc.net.0.type = veth",
            &format!("lxc.net.0.link = {}", net.bridge),
            "lxc.net.0.flags = up",
            "lxc.net.0.ipv4.address = 10.0.0.2/24",
        ],
    );
    lxc.ok("start", &["-n", &name]);
    let mut out = String::new();
    wait_until(20, || {
        out = String::from_utf8_lossy(
            &lxc.run("attach", &["-n", &name, "--", "cat", "/proc/net/if_inet6"])
                .stdout,
        )
        .into_owned();
        out.contains(&format!("fd42{k:04x}0077"))
    });
    assert!(
        out.contains(&format!("fd42{k:04x}0077")),
        "no address from {prefix}::/64 by router advertisement: {out}"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
}
