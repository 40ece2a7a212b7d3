//! Links, addresses and routes over netlink, each test in a network namespace of its own (made
//! for the test's thread), so nothing touches the host's links and nothing needs cleaning up.

use warren_net::{Cidr, Namespace, NetError, Netlink};

fn in_own_netns<F: FnOnce() + Send + 'static>(test: &str, f: F) {
    if !nix::unistd::geteuid().is_root() {
        if std::env::var_os("CI").is_some() {
            panic!("{test} needs root, and CI must not skip it");
        }
        eprintln!("skipping {test}: needs root");
        return;
    }
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("new netns");
        f();
    })
    .join()
    .expect("test thread");
}

#[test]
fn bridge_veth_addresses_and_routes() {
    in_own_netns("bridge_veth_addresses_and_routes", || {
        let mut nl = Netlink::open().expect("netlink");
        nl.create_bridge("br0").expect("bridge");
        let br = nl.link_index("br0").expect("index");
        assert_eq!(
            nl.link_kind("br0").expect("kind").as_deref(),
            Some("bridge")
        );
        nl.set_up(br).expect("up");
        nl.add_address(br, "10.9.0.1/24".parse().expect("cidr"))
            .expect("address");
        nl.create_veth("vh0", "vc0", Namespace::Here).expect("veth");
        let vh = nl.link_index("vh0").expect("vh0");
        let vc = nl.link_index("vc0").expect("vc0");
        nl.set_master(vh, br).expect("master");
        nl.set_mtu(vc, 1400).expect("mtu");
        nl.set_hwaddr(
            vc,
            warren_net::parse_hwaddr("00:16:3e:xx:xx:xx").expect("mac"),
        )
        .expect("hwaddr");
        nl.rename(vc, "eth7").expect("rename");
        assert!(nl
            .link_names()
            .expect("names")
            .contains(&"eth7".to_string()));
        nl.set_up(vh).expect("up");
        nl.set_up(vc).expect("up");
        let addrs = nl.addresses(Some(br)).expect("addresses");
        // (an IPv6 link-local address may be there too)
        assert!(
            addrs.contains(&"10.9.0.1/24".parse::<Cidr>().expect("cidr")),
            "{addrs:?}"
        );
        nl.add_route(
            Some("10.10.0.0/16".parse().expect("dest")),
            Some("10.9.0.2".parse().expect("gw")),
            None,
        )
        .expect("route");
        nl.delete_link(vh).expect("delete");
        // the peer goes with it
        assert!(matches!(
            nl.link_index("eth7"),
            Err(NetError::NoSuchLink(_))
        ));
    });
}

#[test]
fn kernel_errors_name_what_was_asked() {
    in_own_netns("kernel_errors_name_what_was_asked", || {
        let mut nl = Netlink::open().expect("netlink");
        assert!(matches!(nl.link_index("nosuch0"), Err(NetError::NoSuchLink(n)) if n == "nosuch0"));
        nl.create_bridge("br1").expect("bridge");
        let err = nl.create_bridge("br1").unwrap_err().to_string();
        assert!(
            err.contains("create bridge br1") && err.contains("exists"),
            "{err}"
        );
        let err = nl
            .create_bridge("much-too-long-name")
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 to 15"), "{err}");
    });
}
