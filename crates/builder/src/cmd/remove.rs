//! `warren-build remove TREE os:release:arch:variant[:serial]`: takes versions out of a tree (the
//! indexes stop naming them before their files go).

use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_image::sign::Signer;
use warren_image::tree::Tree;

#[derive(ClapArgs)]
pub struct Args {
    /// The published tree
    tree: PathBuf,
    /// os:release:arch:variant (every version) or os:release:arch:variant:serial
    image: String,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tree = Tree::open(&a.tree)?;
    let signer = Signer::for_tree(&tree.root)?;
    for e in tree.remove(&a.image, &signer)? {
        println!("removed {} {}", e.info.product(), e.info.serial);
    }
    Ok(())
}
