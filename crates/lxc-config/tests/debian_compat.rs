//! Compatibility proof: every config Debian's LXC package ships parses.
//!
//! The package is not fetched here (no network at test time). Point `WARREN_LXC_PKG_DIR` at an
//! unpacked `usr/share/lxc/config` (CI: `apt-get download liblxc-common lxc && dpkg -x ...`);
//! the default is `/tmp/lxc-pkg/usr/share/lxc/config`. A missing directory fails the test.

use std::path::{Path, PathBuf};
use warren_lxc_config::{to_spec, Config, ParseOptions};

fn pkg_dir() -> PathBuf {
    let dir = std::env::var_os("WARREN_LXC_PKG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/lxc-pkg/usr/share/lxc/config"));
    assert!(
        dir.join("common.conf").is_file(),
        "LXC's shipped configs are not at {} (set WARREN_LXC_PKG_DIR to an unpacked \
         usr/share/lxc/config, e.g. `apt-get download liblxc-common && dpkg -x liblxc-common_*.deb /tmp/lxc-pkg`)",
        dir.display()
    );
    dir
}

fn conf_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|d| d.ok()).map(|d| d.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file());
    v.sort();
    v
}

#[test]
fn every_debian_lxc_config_parses() {
    let dir = pkg_dir();
    let opts = ParseOptions {
        include_redirect: vec![(PathBuf::from("/usr/share/lxc/config"), dir.clone())],
        ..ParseOptions::default()
    };
    let mut files = conf_files(&dir);
    files.extend(conf_files(&dir.join("common.conf.d")));
    assert!(
        files.len() >= 4,
        "expected common, nesting, oci.common, userns: {files:?}"
    );
    for f in &files {
        let c = Config::load_with(f, &opts).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // Every setting maps too (apparmor keys only warn).
        to_spec(&c, "c1", Path::new("/var/lib/lxc"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for w in &c.warnings {
            assert!(
                w.message.contains("apparmor"),
                "{}: unexpected warning {w}",
                f.display()
            );
        }
    }

    // common.conf's content lands where expected; its cgroup2 device policy is enforced (eBPF).
    let c = Config::load_with(&dir.join("common.conf"), &opts).unwrap();
    assert_eq!(c.get("lxc.pty.max").as_deref(), Some("1024"));
    assert_eq!(c.get_all("lxc.cgroup2.devices.allow").count(), 12);
    let s = to_spec(&c, "c1", Path::new("/var/lib/lxc")).unwrap();
    assert!(!s.unenforced.iter().any(|u| u.contains("devices")));
    assert_eq!(
        s.cgroup
            .v2
            .iter()
            .filter(|(k, _)| k == "devices.allow")
            .count(),
        12
    );
    assert_eq!(s.hooks.len(), 1);

    // A container config including common.conf then userns.conf, as unprivileged ones do.
    let text = format!(
        "lxc.include = /usr/share/lxc/config/common.conf\nlxc.include = {}\n\
         lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n",
        dir.join("userns.conf").display()
    );
    let c = Config::parse_str(&text, Path::new("/var/lib/lxc/u1/config"), &opts).unwrap();
    assert!(
        c.get("lxc.cap.drop").is_none(),
        "userns.conf resets lxc.cap.drop"
    );
    assert!(c.get("lxc.cgroup.devices.allow").is_none());
    assert_eq!(c.get("lxc.tty.dir"), None);
    let s = to_spec(&c, "u1", Path::new("/var/lib/lxc")).unwrap();
    assert_eq!(s.namespaces.new[0], warren_runtime::spec::NsKind::User);
    assert_eq!(s.mount_auto.sys, Some(warren_runtime::spec::SysMode::Rw));
}
