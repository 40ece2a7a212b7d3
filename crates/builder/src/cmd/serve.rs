//! `warren-build serve TREE --listen ADDR:PORT`: serves a published tree over HTTPS (and plain
//! HTTP on the same port), or plain HTTP only with `--http`.

use clap::Args as ClapArgs;
use std::path::PathBuf;
use warren_image::server;

#[derive(ClapArgs)]
pub struct Args {
    /// The published tree
    tree: PathBuf,
    /// Address and port to listen on
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Plain HTTP only (no TLS)
    #[arg(long)]
    http: bool,
    /// The certificate (PEM) to serve instead of the tree's self-signed one
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.tree.join("images").is_dir() {
        anyhow::bail!(
            "{}: not a published tree (no images/ in it; `warren-build publish` makes one)",
            a.tree.display()
        );
    }
    let (listener, addr) = server::bind(&a.listen)?;
    let identity = if a.http {
        None
    } else {
        Some(server::identity(
            &a.tree,
            a.cert.as_deref(),
            a.key.as_deref(),
        )?)
    };
    // (stdout may be a pipe its reader closes: serving goes on, so write errors are ignored)
    use std::io::Write;
    let mut out = std::io::stdout();
    match &identity {
        Some(id) => {
            let _ = writeln!(
                out,
                "serving {} on https://{addr}/ (and plain http on the same port)",
                a.tree.display()
            );
            let _ = writeln!(
                out,
                "certificate {} fingerprint {}",
                id.cert_path.display(),
                id.fingerprint
            );
        }
        None => {
            let _ = writeln!(out, "serving {} on http://{addr}/", a.tree.display());
        }
    }
    let _ = writeln!(out, "signing key: {}/keys/signing.asc", a.tree.display());
    let _ = out.flush();
    server::serve(&a.tree, listener, identity.as_ref())?;
    Ok(())
}
