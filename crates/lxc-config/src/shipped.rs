//! warren's own shared configs (`common.conf`, `userns.conf`, `common.seccomp`), built into the
//! library so containers work before (or without) `install_shipped_configs` ran.

use std::path::Path;

/// Where warren installs its shared configs; includes of files here fall back to the built-in
/// copies when the file is not on disk.
pub const WARREN_CONFIG_DIR: &str = "/usr/share/warren/config";

/// The built-in files: (file name, content).
pub const SHIPPED_CONFIGS: [(&str, &str); 3] = [
    ("common.conf", include_str!("../config/common.conf")),
    ("userns.conf", include_str!("../config/userns.conf")),
    ("common.seccomp", include_str!("../config/common.seccomp")),
];

/// The built-in content of `name` (a file name such as `common.conf`).
pub fn embedded_config(name: &str) -> Option<&'static str> {
    SHIPPED_CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// The built-in content for a path directly under [`WARREN_CONFIG_DIR`].
pub(crate) fn embedded_for(path: &Path) -> Option<&'static str> {
    let rest = path.strip_prefix(WARREN_CONFIG_DIR).ok()?;
    embedded_config(rest.to_str()?)
}

/// Writes the built-in files into `dir` (creating it), leaving files whose content is already
/// right untouched so their timestamps keep meaning something.
pub fn install_shipped_configs(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in SHIPPED_CONFIGS {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(old) if old == content.as_bytes() => continue,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::write(&path, content)?;
    }
    Ok(())
}
