//! Architecture names: Incus's canonical names and their aliases, personalities, and the
//! distribution maps of `mappings.architecture_map` (what distrobuilder's presets do).

/// Incus's canonical architecture names with their accepted aliases and LXC personality.
const ARCHES: &[(&str, &[&str], &str)] = &[
    ("i686", &["i386", "i586", "386", "x86", "i86pc"], "linux32"),
    ("x86_64", &["amd64"], "linux64"),
    ("armv6l", &["armel", "arm"], "linux32"),
    (
        "armv7l",
        &["armhf", "armhfp", "armv7a", "armv7hl", "armv7", "armv7b"],
        "linux32",
    ),
    ("armv8l", &[], "linux32"),
    ("aarch64", &["arm64", "arm64-v8a"], "linux64"),
    ("ppc", &["powerpc"], "linux32"),
    ("ppc64", &["powerpc64", "ppc64be"], "linux64"),
    ("ppc64le", &["ppc64el"], "linux64"),
    ("s390x", &[], "linux64"),
    ("mips", &[], "linux32"),
    ("mips64", &[], "linux64"),
    ("riscv32", &[], "linux32"),
    ("riscv64", &[], "linux64"),
    ("loongarch64", &[], "linux64"),
];

/// The canonical (Incus) name of `name`, if it is an architecture Incus knows.
pub fn canonical(name: &str) -> Option<&'static str> {
    ARCHES
        .iter()
        .find(|(canon, aliases, _)| *canon == name || aliases.contains(&name))
        .map(|(canon, _, _)| *canon)
}

pub fn personality(canonical_name: &str) -> &'static str {
    ARCHES
        .iter()
        .find(|(c, _, _)| *c == canonical_name)
        .map(|(_, _, p)| *p)
        .unwrap_or("linux64")
}

pub fn known_names() -> String {
    ARCHES
        .iter()
        .map(|(c, _, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The machine this runs on, as Incus names it.
pub fn host() -> String {
    let machine = nix::sys::utsname::uname()
        .map(|u| u.machine().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "x86_64".into());
    canonical(&machine).unwrap_or("x86_64").to_string()
}

/// The preset maps, from Incus names to the distribution's own. An architecture a map doesn't
/// list passes through unchanged.
const PRESETS: &[(&str, &[(&str, &str)])] = &[
    ("almalinux", &[("i686", "i386"), ("armv7l", "armhfp")]),
    ("centos", &[("i686", "i386"), ("armv7l", "armhfp")]),
    (
        "alpinelinux",
        &[("i686", "x86"), ("armv6l", "armhf"), ("armv7l", "armv7")],
    ),
    ("altlinux", &[("i686", "i586"), ("armv7l", "armh")]),
    ("archlinux", &[("armv6l", "armv6h"), ("armv7l", "armv7")]),
    (
        "debian",
        &[
            ("i686", "i386"),
            ("x86_64", "amd64"),
            ("armv6l", "armel"),
            ("armv7l", "armhf"),
            ("aarch64", "arm64"),
            ("ppc", "powerpc"),
            ("ppc64", "ppc64"),
            ("ppc64le", "ppc64el"),
            ("mips64", "mips64el"),
        ],
    ),
    (
        "gentoo",
        &[
            ("i686", "i686"),
            ("x86_64", "amd64"),
            ("armv7l", "armv7a_hardfp"),
            ("aarch64", "arm64"),
            ("ppc", "ppc"),
            ("ppc64", "ppc64"),
            ("ppc64le", "ppc64le"),
        ],
    ),
    ("plamolinux", &[("i686", "x86")]),
    ("voidlinux", &[("armv6l", "armv6l"), ("armv7l", "armv7l")]),
    (
        "funtoo",
        &[
            ("i686", "generic_32"),
            ("x86_64", "generic_64"),
            ("armv7l", "armv7a_vfpv3_hardfp"),
            ("aarch64", "arm64_generic"),
        ],
    ),
    ("slackware", &[("i686", "i586")]),
    (
        "openwrt",
        &[
            ("i686", "x86"),
            ("x86_64", "x86_64"),
            ("armv7l", "armv7"),
            ("aarch64", "armsr"),
        ],
    ),
];

pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn is_preset(name: &str) -> bool {
    PRESETS.iter().any(|(n, _)| *n == name)
}

/// Maps `canonical_name` through a preset (if any) or the custom table.
pub fn map(
    canonical_name: &str,
    preset: &str,
    custom: &std::collections::BTreeMap<String, String>,
) -> String {
    if !preset.is_empty() {
        if let Some((_, table)) = PRESETS.iter().find(|(n, _)| *n == preset) {
            return table
                .iter()
                .find(|(from, _)| *from == canonical_name)
                .map(|(_, to)| to.to_string())
                .unwrap_or_else(|| canonical_name.to_string());
        }
    }
    custom
        .get(canonical_name)
        .cloned()
        .unwrap_or_else(|| canonical_name.to_string())
}
