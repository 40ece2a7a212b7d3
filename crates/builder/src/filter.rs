//! distrobuilder's filters (`releases`, `architectures`, `variants`, `types`) and which entries
//! each command and phase sees.

use crate::definition::{Definition, Filter};

/// What is being built, which decides how `types:` filters match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// build-dir: untyped entries only.
    Dir,
    /// build-lxc / build-incus (container), pack-* generators and post-files: untyped and container.
    Container,
    /// build-incus --vm: untyped and vm.
    Vm,
    /// pack-* re-running the package and hook phases: typed entries only (container or vm).
    PackRerun { vm: bool },
}

impl Phase {
    pub fn target_type(self) -> &'static str {
        match self {
            Phase::Dir => "",
            Phase::Container | Phase::PackRerun { vm: false } => "container",
            Phase::Vm | Phase::PackRerun { vm: true } => "vm",
        }
    }
}

/// Does an entry with `filter` apply to `def` in `phase`? Every non-empty list must match;
/// architectures compare against the *mapped* architecture, as distrobuilder does.
pub fn applies(filter: &Filter, def: &Definition, phase: Phase) -> bool {
    let list_ok = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    if !list_ok(&filter.releases, &def.image.release)
        || !list_ok(&filter.architectures, &def.image.architecture_mapped)
        || !list_ok(&filter.variants, &def.image.variant)
    {
        return false;
    }
    let has = |t: &str| filter.types.iter().any(|v| v == t);
    match phase {
        Phase::Dir => filter.types.is_empty(),
        Phase::Container => filter.types.is_empty() || has("container"),
        Phase::Vm => filter.types.is_empty() || has("vm"),
        Phase::PackRerun { vm } => has(if vm { "vm" } else { "container" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_distrobuilders_table() {
        let mut def = Definition::default();
        def.image.release = "bookworm".into();
        def.image.architecture_mapped = "amd64".into();
        def.image.variant = "default".into();
        let f = |types: &[&str]| Filter {
            types: types.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let untyped = f(&[]);
        let container = f(&["container"]);
        let vm = f(&["vm"]);
        assert!(applies(&untyped, &def, Phase::Dir) && !applies(&container, &def, Phase::Dir));
        assert!(
            applies(&untyped, &def, Phase::Container)
                && applies(&container, &def, Phase::Container)
        );
        assert!(!applies(&vm, &def, Phase::Container) && applies(&vm, &def, Phase::Vm));
        assert!(!applies(&untyped, &def, Phase::PackRerun { vm: false }));
        assert!(applies(&container, &def, Phase::PackRerun { vm: false }));
        let arch = Filter {
            architectures: vec!["x86_64".into()],
            ..Default::default()
        };
        assert!(
            !applies(&arch, &def, Phase::Dir),
            "architectures compare with the mapped name"
        );
    }
}
