//! `alpinelinux-http`: the newest minirootfs of the release from the mirror's listing, checked
//! against the mirror's sha256 and the definition's armored keys.

use super::{other, SourceContext, SourceError};
use crate::download;

/// The mirror's base URL, the release directory (`v3.20`) and the full version (`3.20.3`).
fn resolve(ctx: &SourceContext<'_>) -> Result<(String, String, String), SourceError> {
    let def = ctx.def;
    let arch = &def.image.architecture_mapped;
    let url = crate::pongo::render(&def.source.url, &crate::context(def))
        .map_err(|e| other(format!("source.url: {e}")))?;
    let base = url.trim_end_matches('/').to_string();
    let release = if def.image.release == "edge" {
        def.source.same_as.clone()
    } else {
        def.image.release.clone()
    };
    let parts: Vec<&str> = release.split('.').collect();
    let short = format!(
        "v{}",
        parts.iter().take(2).cloned().collect::<Vec<_>>().join(".")
    );
    let full = if parts.len() >= 3 {
        release.clone()
    } else {
        let listing_url = format!("{base}/{short}/releases/{arch}/");
        let listing = download::get_text(&listing_url)?.ok_or_else(|| {
            other(format!(
                "{listing_url}: not found: is {release} an Alpine release with {arch} builds?"
            ))
        })?;
        newest(&listing, &release, arch).ok_or_else(|| {
            other(format!(
                "{listing_url}: no alpine-minirootfs-{release}.N-{arch}.tar.gz listed"
            ))
        })?
    };
    Ok((base, short, full))
}

/// The minirootfs's published sha256 file names this build's input.
pub fn identity(ctx: &SourceContext<'_>) -> Result<Option<String>, SourceError> {
    let (base, short, full) = resolve(ctx)?;
    let arch = &ctx.def.image.architecture_mapped;
    let file = format!("alpine-minirootfs-{full}-{arch}.tar.gz");
    Ok(
        download::get_text(&format!("{base}/{short}/releases/{arch}/{file}.sha256"))?
            .map(|t| format!("{file}\n{t}")),
    )
}

pub fn fetch(ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
    let def = ctx.def;
    let arch = &def.image.architecture_mapped;
    let edge = def.image.release == "edge";
    let url = crate::pongo::render(&def.source.url, &crate::context(def))
        .map_err(|e| other(format!("source.url: {e}")))?;
    let verification = download::policy(
        &url,
        &def.source.keys,
        def.source.skip_verification,
        ctx.insecure,
    )?;
    let (base, short, full) = resolve(ctx)?;
    let file = format!("alpine-minirootfs-{full}-{arch}.tar.gz");
    let dir = ctx.dir();
    std::fs::create_dir_all(&dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let dest = dir.join(&file);
    download::fetch_verified(
        &format!("{base}/{short}/releases/{arch}/{file}"),
        &dest,
        &verification,
    )?;
    let sum = download::sha256_file(&dest)?;
    ctx.fetched.push((dest.clone(), sum));
    super::unpack(&dest, ctx.rootfs)?;
    if edge {
        let repos = ctx.rootfs.join("etc/apk/repositories");
        if let Ok(t) = std::fs::read_to_string(&repos) {
            let _ = std::fs::write(&repos, t.replace(&short, "edge"));
        }
    }
    Ok(())
}

/// The newest `release.N` in a directory listing.
fn newest(listing: &str, release: &str, arch: &str) -> Option<String> {
    let prefix = format!("alpine-minirootfs-{release}.");
    let suffix = format!("-{arch}.tar.gz");
    let mut best: Option<(u64, String)> = None;
    let mut rest = listing;
    while let Some(i) = rest.find(&prefix) {
        let after = &rest[i + prefix.len()..];
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(&suffix) {
            if let Ok(n) = digits.parse::<u64>() {
                if best.as_ref().map_or(true, |(b, _)| n > *b) {
                    best = Some((n, format!("{release}.{digits}")));
                }
            }
        }
        rest = &rest[i + prefix.len()..];
    }
    best.map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn newest_point_release_wins() {
        let l = r#"<a href="alpine-minirootfs-3.20.3-x86_64.tar.gz">alpine-minirootfs-3.20.3-x86_64.tar.gz</a>
<a href="alpine-minirootfs-3.20.10-x86_64.tar.gz">x</a><a href="alpine-minirootfs-3.20.9-x86_64.tar.gz.sha256">"#;
        assert_eq!(
            super::newest(l, "3.20", "x86_64").as_deref(),
            Some("3.20.10")
        );
        assert_eq!(super::newest(l, "3.2", "x86_64"), None);
    }
}
