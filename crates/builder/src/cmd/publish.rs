//! `warren-build publish TREE BUILD_DIR...`: adds built images to a tree served as both LXC's
//! download protocol and simplestreams, signed with the tree's key.

use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_image::sign::Signer;
use warren_image::tree::Tree;

#[derive(ClapArgs)]
pub struct Args {
    /// The tree to publish into (created if missing)
    tree: PathBuf,
    /// Directories build-lxc, build-incus or build-all wrote images into
    #[arg(required = true)]
    outputs: Vec<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tree = Tree::open(&a.tree)?;
    let signer = Signer::for_tree(&tree.root)?;
    for dir in &a.outputs {
        let e = tree.publish(dir, &signer)?;
        let kinds = match (e.has_lxc(), e.has_incus()) {
            (true, true) => "LXC and Incus",
            (true, false) => "LXC",
            _ => "Incus",
        };
        println!(
            "published {} {} ({kinds}) at /{}/",
            e.info.product(),
            e.info.serial,
            e.path
        );
    }
    println!(
        "signing key {} (public key: {}/keys/signing.asc)",
        signer.fingerprint()?,
        tree.root.display()
    );
    Ok(())
}
