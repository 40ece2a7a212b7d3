//! Container networks (lxc.net.N.*) on real bridges and veths: each test has a bridge of its own
//! (TestBridge: a /24 of its own, and an nftables rule dropping forwarded traffic leaving it), and
//! traffic goes only between a container and that bridge.

use warren_testutil::{require_root, unique_name, wait_until, HostLink, Lxc, TestBridge};

const BIN: &str = env!("CARGO_BIN_EXE_warren-lxc");

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// A busybox container with `net` config lines (and, for an unprivileged one, an id map).
fn container(lxc: &Lxc, net: &str, unprivileged: bool) -> String {
    let name = unique_name("net");
    let mut extra: Vec<String> = net.lines().map(str::to_string).collect();
    if unprivileged {
        extra.extend([
            "lxc.include = /usr/share/warren/config/userns.conf".to_string(),
            "lxc.idmap = u 0 100000 65536".to_string(),
            "lxc.idmap = g 0 100000 65536".to_string(),
        ]);
    }
    let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
    lxc.busybox(&name, &refs);
    name
}

fn veth_on_a_bridge_attempt(test: &str, unprivileged: bool) {
    if !require_root(test) {
        return;
    }
    let br = TestBridge::new();
    let lxc = Lxc::new(BIN);
    let addr = br.host(10);
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.flags = up\n\
             lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\nlxc.net.0.ipv4.address = {addr}\n\
             lxc.net.0.ipv4.gateway = auto\n",
            br.name
        ),
        unprivileged,
    );
    lxc.ok("start", &["-n", &name]);
    assert_eq!(br.ports().len(), 1, "one host-side veth on the bridge");
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            &format!(
                "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ip route | grep default; \
                 cat /sys/class/net/eth0/address; ping -c1 -W2 {} >/dev/null && echo reached",
                br.address
            ),
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("inet {addr}"), "{out}");
    assert!(
        lines[1].starts_with(&format!("default via {} dev eth0", br.address)),
        "{out}"
    );
    assert!(lines[2].starts_with("00:16:3e:"), "{out}");
    assert_eq!(lines[3], "reached", "{out}");
    // ls and info show the address as LXC does
    let ls = lxc.ok("ls", &["-f"]);
    assert!(ls.contains(addr.trim_end_matches("/24")), "{ls}");
    let info = lxc.ok("info", &["-n", &name, "-i"]);
    assert!(info.contains(addr.trim_end_matches("/24")), "{info}");
    // the links, as LXC shows them: the host side of the veth, with its counters
    let stats = lxc.ok("info", &["-n", &name, "-S"]);
    let host = br.ports().pop().expect("host side");
    assert!(
        stats.contains(&format!("Link:           {host}")),
        "{stats}"
    );
    assert!(
        stats.contains(" TX bytes:") && stats.contains(" Total bytes:"),
        "{stats}"
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(
        br.ports().is_empty(),
        "the host side outlived the container: {:?}",
        br.ports()
    );
}

#[test]
fn veth_on_a_bridge() {
    veth_on_a_bridge_attempt("veth_on_a_bridge", false);
}

#[test]
fn veth_on_a_bridge_unprivileged() {
    veth_on_a_bridge_attempt("veth_on_a_bridge_unprivileged", true);
}

#[test]
fn names_mtu_and_mac_are_as_configured() {
    if !require_root("names_mtu_and_mac_are_as_configured") {
        return;
    }
    let br = TestBridge::new();
    let lxc = Lxc::new(BIN);
    let pair = unique_name("vp");
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.veth.pair = {pair}\n\
             lxc.net.0.name = lan7\nlxc.net.0.mtu = 1400\nlxc.net.0.hwaddr = 02:16:3e:01:02:03\n\
             lxc.net.0.flags = up\nlxc.net.0.ipv4.address = {}\nlxc.net.0.ipv4.address = {}\n",
            br.name,
            br.host(20),
            br.host(21)
        ),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    assert_eq!(br.ports(), vec![pair.clone()]);
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{pair}/mtu")).expect("host mtu");
    assert_eq!(mtu.trim(), "1400");
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "cat /sys/class/net/lan7/mtu /sys/class/net/lan7/address; ip -4 addr show lan7 | grep -c inet",
        ],
    );
    assert_eq!(out.trim(), "1400\n02:16:3e:01:02:03\n2", "{out}");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn empty_network_has_only_loopback_up() {
    if !require_root("empty_network_has_only_loopback_up") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = container(&lxc, "lxc.net.0.type = empty\n", false);
    lxc.ok("start", &["-n", &name]);
    let out = lxc.ok("attach", &["-n", &name, "--", "ls", "/sys/class/net"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    let flags = lxc.ok(
        "attach",
        &["-n", &name, "--", "cat", "/sys/class/net/lo/operstate"],
    );
    assert_ne!(flags.trim(), "down");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn macvlan_on_a_host_link() {
    if !require_root("macvlan_on_a_host_link") {
        return;
    }
    // the parent: one end of a veth pair of the test's own (this kernel has no dummy links)
    let host = HostLink::new();
    let parent = &host.name;
    let lxc = Lxc::new(BIN);
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = macvlan\nlxc.net.0.link = {parent}\nlxc.net.0.macvlan.mode = bridge\n\
             lxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.212.0.2/24\n"
        ),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'",
        ],
    );
    assert_eq!(out.trim(), "inet 10.212.0.2/24", "{out}");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn the_host_side_goes_when_the_monitor_is_killed() {
    if !require_root("the_host_side_goes_when_the_monitor_is_killed") {
        return;
    }
    let br = TestBridge::new();
    let lxc = Lxc::new(BIN);
    let name = container(
        &lxc,
        &format!("lxc.net.0.type = veth\nlxc.net.0.link = {}\n", br.name),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    assert_eq!(br.ports().len(), 1);
    for pid in warren_testutil::processes_matching(&format!(
        "[warren monitor] {} {name}",
        lxc.lxcpath().display()
    )) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(wait_until(5, || br.ports().is_empty()), "{:?}", br.ports());
}

/// A start that must fail with one line naming `key`, leaving nothing on the host.
fn refused(net: &str, key: &str, unprivileged: bool, test: &str) {
    if !require_root(test) {
        return;
    }
    let br = TestBridge::new();
    let lxc = Lxc::new(BIN);
    // a host-side name of the test's own, to look for afterwards
    let pair = unique_name("vr");
    let net = net.replace("BRIDGE", &br.name);
    let net = if net.contains("type = veth") {
        format!("{net}lxc.net.0.veth.pair = {pair}\n")
    } else {
        net
    };
    let name = container(&lxc, &net, unprivileged);
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(key), "{err}");
    assert_eq!(lxc.ok("info", &["-n", &name, "-sH"]).trim(), "STOPPED");
    let after = warren_net::Netlink::open()
        .and_then(|mut nl| nl.link_names())
        .expect("links");
    assert!(!after.contains(&pair), "{pair} was left behind");
    assert!(
        br.ports().is_empty(),
        "left on the bridge: {:?}",
        br.ports()
    );
}

#[test]
fn a_missing_bridge_is_refused() {
    refused(
        "lxc.net.0.type = veth\nlxc.net.0.link = nosuchbr0\n",
        "lxc.net.0.link: bridge \"nosuchbr0\" does not exist",
        false,
        "a_missing_bridge_is_refused",
    );
}

#[test]
fn a_link_that_is_not_a_bridge_is_refused() {
    refused(
        "lxc.net.0.type = veth\nlxc.net.0.link = lo\n",
        "lxc.net.0.link: \"lo\" is not a bridge",
        false,
        "a_link_that_is_not_a_bridge_is_refused",
    );
}

#[test]
fn a_missing_macvlan_parent_is_refused() {
    refused(
        "lxc.net.0.type = macvlan\nlxc.net.0.link = nosuch0\n",
        "lxc.net.0.link: host interface \"nosuch0\" does not exist",
        false,
        "a_missing_macvlan_parent_is_refused",
    );
}

#[test]
fn an_address_of_the_wrong_family_is_refused() {
    refused(
        "lxc.net.0.type = veth\nlxc.net.0.link = BRIDGE\nlxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.0.0.1/24\nlxc.net.0.ipv4.gateway = fd00::1\n",
        "lxc.net.0.ipv4.gateway",
        false,
        "an_address_of_the_wrong_family_is_refused",
    );
}

#[test]
fn network_none_is_refused_for_unprivileged_containers() {
    refused(
        "lxc.net.0.type = none\n",
        "lxc.net.0.type: \"none\"",
        true,
        "network_none_is_refused_for_unprivileged_containers",
    );
}

#[test]
fn a_bad_cidr_is_a_config_error_naming_file_and_line() {
    if !require_root("a_bad_cidr_is_a_config_error_naming_file_and_line") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let name = container(
        &lxc,
        "lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.300/24\n",
        false,
    );
    let out = lxc.run("start", &["-n", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("config") && err.contains("lxc.net.0.ipv4.address"),
        "{err}"
    );
}

/// Whether this kernel can make a link of `kind` ("vlan", "ipvlan"): tried in a throwaway
/// network namespace. This development machine's kernel has neither; the qemu guest of
/// shared/tools/vm-cgroup2.sh (Debian's kernel) has both.
fn kernel_has(kind: &str) -> bool {
    let kind = kind.to_string();
    std::thread::spawn(move || {
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            return false;
        }
        let Ok(mut nl) = warren_net::Netlink::open() else {
            return false;
        };
        if nl
            .create_veth("p0", "p1", warren_net::Namespace::Here)
            .is_err()
        {
            return false;
        }
        match kind.as_str() {
            "vlan" => nl
                .create_vlan("v0", "p0", 5, warren_net::Namespace::Here)
                .is_ok(),
            _ => nl
                .create_ipvlan("v0", "p0", "l2", "bridge", warren_net::Namespace::Here)
                .is_ok(),
        }
    })
    .join()
    .unwrap_or(false)
}

fn on_a_parent_link_attempt(test: &str, kind: &str, keys: &str, addr: &str) {
    if !require_root(test) {
        return;
    }
    if !kernel_has(kind) {
        eprintln!(
            "skipping {test}: this kernel cannot make {kind} links (no 8021q / ipvlan support); \
             it runs in the qemu guest: shared/tools/vm-cgroup2.sh"
        );
        return;
    }
    let host = HostLink::new();
    let parent = &host.name;
    let mut nl = warren_net::Netlink::open().expect("netlink");
    // a VLAN can only come up on a link that is up
    for l in [&host.name, &host.peer] {
        let i = nl.link_index(l).expect("index");
        nl.set_up(i).expect("up");
    }
    let lxc = Lxc::new(BIN);
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = {kind}\nlxc.net.0.link = {parent}\n{keys}lxc.net.0.flags = up\nlxc.net.0.ipv4.address = {addr}\n"
        ),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'",
        ],
    );
    assert_eq!(out.trim(), format!("inet {addr}"), "{out}");
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn vlan_on_a_host_link() {
    on_a_parent_link_attempt(
        "vlan_on_a_host_link",
        "vlan",
        "lxc.net.0.vlan.id = 42\n",
        "10.212.1.2/24",
    );
}

#[test]
fn ipvlan_on_a_host_link() {
    on_a_parent_link_attempt(
        "ipvlan_on_a_host_link",
        "ipvlan",
        "lxc.net.0.ipvlan.mode = l3\nlxc.net.0.ipvlan.isolation = bridge\n",
        "10.212.2.2/24",
    );
}

#[test]
fn a_vlan_without_an_id_is_refused() {
    refused(
        "lxc.net.0.type = vlan\nlxc.net.0.link = lo\n",
        "lxc.net.0.vlan.id: a vlan interface needs its VLAN id",
        false,
        "a_vlan_without_an_id_is_refused",
    );
}

#[test]
fn up_and_down_scripts_run_with_lxcs_arguments_and_environment() {
    if !require_root("up_and_down_scripts_run_with_lxcs_arguments_and_environment") {
        return;
    }
    let br = TestBridge::new();
    let lxc = Lxc::new(BIN);
    let log = lxc.lxcpath().join("script.log");
    let script = lxc.lxcpath().join("net-script");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$* | $LXC_HOOK_TYPE $LXC_HOOK_SECTION $LXC_NET_TYPE $LXC_NET_PARENT $LXC_NET_PEER\" >> {}\n",
            log.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let pair = unique_name("vs");
    let lines = format!(
        "lxc.net.0.type = veth\nlxc.net.0.link = {}\nlxc.net.0.veth.pair = {pair}\n\
         lxc.net.0.script.up = {s}\nlxc.net.0.script.down = {s}\n",
        br.name,
        s = script.display()
    );
    let name = container(&lxc, &lines, false);
    lxc.ok("start", &["-n", &name]);
    lxc.ok("stop", &["-n", &name, "-k"]);
    let text = std::fs::read_to_string(&log).expect("script ran");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(
        got,
        [
            format!("{name} net up veth {pair} | up net veth {} {pair}", br.name),
            format!(
                "{name} net down veth {pair} | down net veth {} {pair}",
                br.name
            ),
        ],
        "{text}"
    );
}

#[test]
fn a_failing_up_script_fails_the_start_and_leaves_nothing() {
    refused(
        "lxc.net.0.type = veth\nlxc.net.0.link = BRIDGE\nlxc.net.0.script.up = /bin/false\n",
        "lxc.net.0.script.up",
        false,
        "a_failing_up_script_fails_the_start_and_leaves_nothing",
    );
}

#[test]
fn a_phys_link_comes_back_under_its_own_name() {
    if !require_root("a_phys_link_comes_back_under_its_own_name") {
        return;
    }
    // the "physical" link: one end of a veth pair of the test's own (given back explicitly, it
    // survives, as a real NIC would)
    let host = HostLink::new();
    let link = &host.name;
    let mut nl = warren_net::Netlink::open().expect("netlink");
    let lxc = Lxc::new(BIN);
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = phys\nlxc.net.0.link = {link}\nlxc.net.0.name = eth0\nlxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.212.3.2/24\n"
        ),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    assert!(nl.link_index(link).is_err(), "{link} is still on the host");
    let out = lxc.ok(
        "attach",
        &[
            "-n",
            &name,
            "--",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'",
        ],
    );
    assert_eq!(out.trim(), "inet 10.212.3.2/24", "{out}");
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(
        nl.link_index(link).is_ok(),
        "{link} did not come back under its own name: {:?}",
        nl.link_names()
    );
}

#[test]
fn router_mode_routes_to_the_container_without_a_bridge() {
    if !require_root("router_mode_routes_to_the_container_without_a_bridge") {
        return;
    }
    let lxc = Lxc::new(BIN);
    let pair = unique_name("vr");
    let name = container(
        &lxc,
        &format!(
            "lxc.net.0.type = veth\nlxc.net.0.veth.mode = router\nlxc.net.0.veth.pair = {pair}\n\
             lxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.212.6.2/32\nlxc.net.0.ipv4.gateway = dev\n\
             lxc.net.0.veth.ipv4.route = 10.212.7.0/24\n"
        ),
        false,
    );
    lxc.ok("start", &["-n", &name]);
    // the host routes the container's address and the extra route through the host side
    let routes = std::fs::read_to_string("/proc/net/route").expect("routes");
    let via_pair: Vec<(String, String)> = routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&pair.as_str())).then(|| (f[1].to_string(), f[7].to_string()))
        })
        .collect();
    // /proc/net/route shows addresses and masks as little-endian hex
    assert!(
        via_pair.contains(&("0206D40A".into(), "FFFFFFFF".into())),
        "{via_pair:?}"
    );
    assert!(
        via_pair.contains(&("0007D40A".into(), "00FFFFFF".into())),
        "{via_pair:?}"
    );
    let proxy = std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{pair}/proxy_arp"))
        .expect("proxy_arp");
    assert_eq!(proxy.trim(), "1");
    // and the host reaches it (locally: over the veth)
    let ping = std::process::Command::new("busybox")
        .args(["ping", "-c1", "-W2", "10.212.6.2"])
        .output()
        .expect("ping");
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    lxc.ok("stop", &["-n", &name, "-k"]);
}

#[test]
fn router_mode_with_a_bridge_is_refused() {
    refused(
        "lxc.net.0.type = veth\nlxc.net.0.link = BRIDGE\nlxc.net.0.veth.mode = router\n",
        "lxc.net.0.veth.mode: router mode",
        false,
        "router_mode_with_a_bridge_is_refused",
    );
}

/// `lxc.net.N.l2proxy = 1`: the host link answers ARP for the container's address (a proxy
/// neighbour entry, gone at stop); without the sysctl LXC requires, or for an ipvlan in another
/// mode than l3s, the start is refused naming what to set.
#[test]
fn l2proxy_puts_proxy_entries_on_the_host_link() {
    if !require_root("l2proxy_puts_proxy_entries_on_the_host_link") {
        return;
    }
    let host = HostLink::new();
    let parent = &host.name;
    let forwarding = format!("/proc/sys/net/ipv4/conf/{parent}/forwarding");
    let lxc = Lxc::new(BIN);
    let net = format!(
        "lxc.net.0.type = macvlan\nlxc.net.0.link = {parent}\nlxc.net.0.macvlan.mode = bridge\n\
         lxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.213.0.2/24\nlxc.net.0.l2proxy = 1\n"
    );
    std::fs::write(&forwarding, "0").expect("sysctl");
    let name = container(&lxc, &net, false);
    let out = lxc.run("start", &["-n", &name]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("needs sysctl net.ipv4.conf.{parent}.forwarding=1")),
        "{}",
        stderr(&out)
    );
    std::fs::write(&forwarding, "1").expect("sysctl");
    let proxies = || {
        let o = std::process::Command::new("ip")
            .args(["neigh", "show", "proxy", "dev", parent])
            .output()
            .expect("ip");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    lxc.ok("start", &["-n", &name]);
    assert!(proxies().contains("10.213.0.2"), "{}", proxies());
    lxc.ok("stop", &["-n", &name, "-k"]);
    assert!(!proxies().contains("10.213.0.2"), "{}", proxies());
    // an ipvlan needs mode l3s for it
    let bad = container(
        &lxc,
        &format!(
            "lxc.net.0.type = ipvlan\nlxc.net.0.link = {parent}\nlxc.net.0.ipvlan.mode = l2\n\
             lxc.net.0.ipv4.address = 10.213.0.3/24\nlxc.net.0.l2proxy = 1\n"
        ),
        false,
    );
    let out = lxc.run("start", &["-n", &bad]);
    assert!(stderr(&out).contains("mode l3s"), "{}", stderr(&out));
    // in l3s, the address gets a route through loopback too, which goes with it
    if kernel_has("ipvlan") {
        let good = container(
            &lxc,
            &format!(
                "lxc.net.0.type = ipvlan\nlxc.net.0.link = {parent}\nlxc.net.0.ipvlan.mode = l3s\n\
                 lxc.net.0.flags = up\nlxc.net.0.ipv4.address = 10.213.0.4/24\nlxc.net.0.l2proxy = 1\n"
            ),
            false,
        );
        let routes = || {
            let o = std::process::Command::new("ip")
                .args(["route", "show", "dev", "lo"])
                .output()
                .expect("ip");
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        lxc.ok("start", &["-n", &good]);
        assert!(proxies().contains("10.213.0.4"), "{}", proxies());
        assert!(routes().contains("10.213.0.4"), "{}", routes());
        lxc.ok("stop", &["-n", &good, "-k"]);
        assert!(!routes().contains("10.213.0.4"), "{}", routes());
        assert!(!proxies().contains("10.213.0.4"), "{}", proxies());
    }
}
