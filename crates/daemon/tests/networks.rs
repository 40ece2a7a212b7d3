//! Managed networks through the real incus client: a bridge warrend makes (a free subnet picked,
//! dnsmasq, NAT read back from nftables), instances getting a DHCP lease on it (dynamic, and
//! static from a nic's ipv4.address), the leases listed, deletion refused while in use, the
//! bridge made again after it vanished (a reboot) when warrend starts, and bad input refused.
//! A drop rule keeps every packet on the machine; dnsmasq forwards no query.

use warren_testutil::{require_root, unique_name, wait_until, TestFirewall};

mod common;
use common::*;

/// The IPv4 address `incus list` shows for `name`, once there is one.
fn ipv4(w: &Warrend, name: &str) -> Option<String> {
    let mut found = None;
    wait_until(30, || {
        let out = w.ok(&["list", name, "-f", "csv", "-c", "4"]);
        found = out
            .split_whitespace()
            .next()
            .filter(|a| a.contains('.'))
            .map(str::to_string);
        found.is_some()
    });
    found
}

#[test]
fn managed_networks_give_leases_and_stay_while_used() {
    if !require_root("managed_networks_give_leases_and_stay_while_used") || !have_incus() {
        return;
    }
    let mut w = Warrend::start();
    admin_init(&w);
    let image = unified_image(w.dir.path());
    w.ok(&["image", "import", &image.to_string_lossy(), "--alias", "bb"]);
    let net = unique_name("wn");
    let _firewall = TestFirewall::new(&net);
    // bad input first: nothing is made
    for (args, says) in [
        (
            vec!["ipv4.address=10.1.2.3/33"],
            "Invalid value for network ipv4.address",
        ),
        (
            vec!["ipv4.addres=auto"],
            "Invalid network configuration key: ipv4.addres",
        ),
        (vec!["ipv4.nat=maybe"], "Invalid value for network ipv4.nat"),
    ] {
        let mut a = vec!["network", "create", net.as_str()];
        a.extend(args);
        let o = w.incus(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{a:?}: {err}");
    }
    let long = w.incus(&["network", "create", "a-name-far-too-long-for-a-link"]);
    assert!(!long.status.success());
    assert!(!std::path::Path::new("/sys/class/net").join(&net).exists());
    // the network: a free /24, NAT for it in an nftables table of its own
    w.ok(&["network", "create", &net]);
    let shown = w.ok(&["network", "show", &net]);
    let subnet = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("ipv4.address: "))
        .expect("ipv4.address")
        .to_string();
    let prefix = subnet
        .rsplit_once('.')
        .map(|(p, _)| p.to_string())
        .expect("prefix");
    assert!(
        subnet.starts_with("10.") && subnet.ends_with(".1/24"),
        "{subnet}"
    );
    let rules = std::process::Command::new("nft")
        .args(["list", "table", "ip", &format!("warren_lxcnet_{net}")])
        .output()
        .expect("nft");
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(
        rules.contains(&format!(
            "ip saddr {prefix}.0/24 ip daddr != {prefix}.0/24 masquerade"
        )),
        "{rules}"
    );
    assert!(w
        .ok(&["network", "list", "-f", "csv"])
        .contains(&format!("{net},bridge,YES,{subnet}")));
    let dup = w.incus(&["network", "create", &net]);
    assert!(!dup.status.success());
    // a dynamic lease, shown by list and by the leases
    w.ok(&["launch", "bb", "n1", "--network", &net]);
    let a1 = ipv4(&w, "n1").expect("n1 got a lease");
    assert!(a1.starts_with(&format!("{prefix}.")), "{a1}");
    let leases = w.ok(&["network", "list-leases", &net, "-f", "csv"]);
    assert!(leases.contains("n1,") && leases.contains(&a1), "{leases}");
    // an instance of another project, on the same (default project's) network: its lease is
    // listed in its project, not in default
    w.ok(&[
        "project",
        "create",
        "np",
        "-c",
        "features.profiles=false",
        "-c",
        "features.images=false",
    ]);
    w.ok(&["launch", "bb", "n3", "--network", &net, "--project", "np"]);
    assert!(wait_until(10, || w
        .ok(&[
            "network",
            "list-leases",
            &net,
            "-f",
            "csv",
            "--project",
            "np"
        ])
        .contains("n3,")));
    let in_default = w.ok(&["network", "list-leases", &net, "-f", "csv"]);
    assert!(!in_default.contains("n3,"), "{in_default}");
    w.ok(&["delete", "-f", "n3", "--project", "np"]);
    w.ok(&["project", "delete", "np"]);
    // a static one from the nic's ipv4.address
    w.ok(&["init", "bb", "n2", "--network", &net]);
    let fixed = format!("{prefix}.77");
    w.ok(&[
        "config",
        "device",
        "set",
        "n2",
        "eth0",
        &format!("ipv4.address={fixed}"),
    ]);
    let bad = w.incus(&[
        "config",
        "device",
        "set",
        "n2",
        "eth0",
        "ipv4.address=192.0.2.1",
    ]);
    assert!(!bad.status.success());
    w.ok(&["start", "n2"]);
    assert_eq!(ipv4(&w, "n2").as_deref(), Some(fixed.as_str()));
    assert!(w
        .ok(&["network", "list-leases", &net, "-f", "csv"])
        .contains(&format!("{fixed},STATIC")));
    // the containers reach the bridge's address (DNS on it answers local names only)
    w.ok(&[
        "exec",
        "n1",
        "--",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        &format!("{prefix}.1"),
    ]);
    // a nic added to the running n1 arrives at once (hotplug): its host side a port of the
    // bridge, its end in the container up with the MAC asked; removed, both ends go
    let ports = || {
        std::fs::read_dir(
            std::path::Path::new("/sys/class/net")
                .join(&net)
                .join("brif"),
        )
        .map(|d| d.count())
        .unwrap_or(0)
    };
    let (pid, ports_before) = (w.pid("n1"), ports());
    w.ok(&[
        "config",
        "device",
        "add",
        "n1",
        "eth1",
        "nic",
        &format!("network={net}"),
        "hwaddr=00:16:3e:aa:bb:cc",
    ]);
    assert_eq!(w.pid("n1"), pid, "no restart");
    let link = w.ok(&["exec", "n1", "--", "ip", "link", "show", "eth1"]);
    assert!(
        link.contains("00:16:3e:aa:bb:cc") && link.contains(",UP"),
        "{link}"
    );
    assert_eq!(ports(), ports_before + 1);
    // a nic on a bridge that doesn't exist: refused, nothing left behind
    let before = w.ok(&["config", "show", "n1"]);
    let bad = w.incus(&[
        "config",
        "device",
        "add",
        "n1",
        "eth2",
        "nic",
        "nictype=bridged",
        "parent=warren-nosuchbr",
    ]);
    assert!(!bad.status.success());
    assert_eq!(w.ok(&["config", "show", "n1"]), before);
    w.ok(&["config", "device", "remove", "n1", "eth1"]);
    assert!(!w
        .incus(&["exec", "n1", "--", "ip", "link", "show", "eth1"])
        .status
        .success());
    assert_eq!(ports(), ports_before);
    // in use: it can't go, and says by whom
    let busy = w.incus(&["network", "delete", &net]);
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("/1.0/instances/n1"), "{err}");
    // gone from the host (a reboot): warrend makes it again when it starts
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &net])
        .status();
    w.restart();
    assert!(wait_until(10, || std::path::Path::new("/sys/class/net")
        .join(&net)
        .exists()));
    w.ok(&["restart", "-f", "n1"]);
    assert!(ipv4(&w, "n1").is_some());
    w.ok(&["delete", "-f", "n1", "n2"]);
    w.ok(&["network", "delete", &net]);
    assert!(!std::path::Path::new("/sys/class/net").join(&net).exists());
    let table = std::process::Command::new("nft")
        .args(["list", "table", "ip", &format!("warren_lxcnet_{net}")])
        .output()
        .expect("nft");
    assert!(!table.status.success(), "the NAT table went with it");
}

#[test]
fn admin_init_asks_or_takes_the_defaults_and_makes_a_bridge() {
    if !require_root("admin_init_asks_or_takes_the_defaults_and_makes_a_bridge") {
        return;
    }
    let w = Warrend::start();
    let net = unique_name("wi");
    let _firewall = TestFirewall::new(&net);
    // the questions, answered on standard input
    let mut child = std::process::Command::new(WARREN)
        .args(["admin", "init"])
        .env("WARREN_DIR", w.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("warren");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("yes\n\n\n\nyes\n{net}\nauto\nnone\nyes\n").as_bytes())
        .expect("answers");
    let o = child.wait_with_output().expect("wait");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("What should the new bridge be called? [default=warrenbr0]"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  name: {net}")),
        "the preseed printed: {out}"
    );
    let (_, profile) = w.raw("GET", "/1.0/profiles/default", b"");
    assert_eq!(
        profile["metadata"]["devices"]["eth0"]["network"],
        net.as_str(),
        "{profile}"
    );
    assert_eq!(
        profile["metadata"]["devices"]["root"]["pool"], "default",
        "{profile}"
    );
    let (_, n) = w.raw("GET", &format!("/1.0/networks/{net}"), b"");
    assert_eq!(n["metadata"]["managed"], true, "{n}");
    // --minimal again: everything there is kept, nothing fails
    let o = std::process::Command::new(WARREN)
        .args(["admin", "init", "--minimal", "--network", &net])
        .env("WARREN_DIR", w.dir.path())
        .output()
        .expect("warren");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a name the host uses for something else is refused
    let o = std::process::Command::new(WARREN)
        .args(["admin", "init", "--minimal", "--network", "lo"])
        .env("WARREN_DIR", w.dir.path())
        .output()
        .expect("warren");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("choose another name"),
        "{err}"
    );
    // stdin ending early is a clear error
    let o = std::process::Command::new(WARREN)
        .args(["admin", "init"])
        .env("WARREN_DIR", w.dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("warren");
    assert!(String::from_utf8_lossy(&o.stderr).contains("use --minimal or --preseed"));
}
