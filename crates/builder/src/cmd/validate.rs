//! `warren-build validate DEF`: parse, apply -o, fill defaults and check, building nothing.

use clap::Args as ClapArgs;

#[derive(ClapArgs)]
pub struct Args {
    /// The definition file, or - for stdin
    definition: String,
    /// Override a value: KEY=VALUE (repeatable; several pairs may be comma-separated)
    #[arg(short = 'o', long = "options", value_name = "KEY=VALUE")]
    options: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = warren_builder::load::load_path(&args.definition, &args.options)?;
    let img = &loaded.def.image;
    println!(
        "{}: valid ({} {} {}, variant {}, downloader {})",
        args.definition,
        img.distribution,
        if img.release.is_empty() {
            "(no release)"
        } else {
            &img.release
        },
        img.architecture_mapped,
        img.variant,
        loaded.def.source.downloader
    );
    Ok(())
}
