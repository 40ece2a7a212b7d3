//! `rootfs-http`: any rootfs tarball or squashfs by URL (http, https or file://), checked against
//! `URL.sha256` when the server has one and `URL.asc` with keys.

use super::{other, SourceContext, SourceError};
use crate::download;

pub fn fetch(ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
    let def = ctx.def;
    let url = crate::pongo::render(&def.source.url, &crate::context(def))
        .map_err(|e| other(format!("source.url: {e}")))?;
    let verification = download::policy(
        &url,
        &def.source.keys,
        def.source.skip_verification,
        ctx.insecure,
    )?;
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("rootfs.tar")
        .to_string();
    let dir = ctx.dir();
    std::fs::create_dir_all(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let dest = dir.join(&name);
    download::fetch_verified(&url, &dest, &verification)?;
    let sum = download::sha256_file(&dest)?;
    ctx.fetched.push((dest.clone(), sum));
    super::unpack(&dest, ctx.rootfs)
}
