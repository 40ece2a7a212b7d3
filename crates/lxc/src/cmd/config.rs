//! `lxc-config`: print warren-lxc's own configuration values (`lxc.lxcpath`, `lxc.default_config`).

use anyhow::{bail, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// List the known items
    #[arg(short = 'l', long = "list")]
    pub list: bool,
    /// The item to print
    pub item: Option<String>,
}

const ITEMS: [&str; 3] = ["lxc.default_config", "lxc.lxcpath", "warren.config_dir"];

pub fn run(args: Args) -> Result<i32> {
    if args.list || args.item.is_none() {
        for i in ITEMS {
            println!("{i}");
        }
        return Ok(0);
    }
    match args.item.as_deref().unwrap_or_default() {
        "lxc.default_config" => println!("{}", crate::common::default_config_path().display()),
        "lxc.lxcpath" => println!("{}", crate::common::lxcpath(&None).display()),
        "warren.config_dir" => println!("{}", warren_lxc_config::WARREN_CONFIG_DIR),
        other => bail!("unknown item \"{other}\" (try --list)"),
    }
    Ok(0)
}
