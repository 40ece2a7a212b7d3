//! `warren-build prune TREE --keep N [PRODUCT]`: keeps the newest N versions of each product.

use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_image::sign::Signer;
use warren_image::tree::Tree;

#[derive(ClapArgs)]
pub struct Args {
    /// The published tree
    tree: PathBuf,
    /// Only this product (os:release:arch:variant)
    product: Option<String>,
    /// How many versions of each product to keep
    #[arg(long, default_value_t = 3)]
    keep: usize,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tree = Tree::open(&a.tree)?;
    let signer = Signer::for_tree(&tree.root)?;
    let gone = tree.prune(a.keep, a.product.as_deref(), &signer)?;
    for e in &gone {
        println!("removed {} {}", e.info.product(), e.info.serial);
    }
    if gone.is_empty() {
        println!(
            "nothing to prune: no product has more than {} versions",
            a.keep
        );
    }
    Ok(())
}
