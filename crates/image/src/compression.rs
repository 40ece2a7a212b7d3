//! Compression as distrobuilder names it (`xz`, `zstd-19`, `gzip-9`, `none`, ...): file extensions,
//! the compressor processes (all cores, `-T0`), and the squashfs compressor arguments.

use std::io::{self, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    None,
    Xz,
    Zstd,
    Gzip,
    Bzip2,
    Lzip,
    Lzma,
    Lzo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub algorithm: Algorithm,
    pub level: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("--compression: \"{0}\" is not a compression (xz, zstd, gzip, bzip2, lzip, lzma, lzo or none, with an optional -LEVEL)")]
    Unknown(String),
    #[error("--compression: level {level} is out of range for {name} ({min}-{max})")]
    Level {
        name: &'static str,
        level: u32,
        min: u32,
        max: u32,
    },
    #[error("--compression: {0} can't compress a squashfs (gzip, lzo, lz4, xz, zstd or lzma can)")]
    NotForSquashfs(&'static str),
    #[error("{program}: {source}")]
    Spawn {
        program: &'static str,
        source: io::Error,
    },
    #[error("{program} failed: {status}")]
    Failed {
        program: &'static str,
        status: std::process::ExitStatus,
    },
}

impl Compression {
    pub const XZ: Compression = Compression {
        algorithm: Algorithm::Xz,
        level: None,
    };

    pub fn parse(text: &str) -> Result<Compression, CompressionError> {
        let (name, level) = match text.rsplit_once('-') {
            Some((n, l)) if !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()) => (
                n,
                Some(
                    l.parse::<u32>()
                        .map_err(|_| CompressionError::Unknown(text.into()))?,
                ),
            ),
            _ => (text, None),
        };
        let algorithm = match name {
            "none" => Algorithm::None,
            "xz" => Algorithm::Xz,
            "zstd" => Algorithm::Zstd,
            "gzip" => Algorithm::Gzip,
            "bzip2" => Algorithm::Bzip2,
            "lzip" => Algorithm::Lzip,
            "lzma" => Algorithm::Lzma,
            "lzo" | "lzop" => Algorithm::Lzo,
            _ => return Err(CompressionError::Unknown(text.into())),
        };
        let c = Compression { algorithm, level };
        if let Some(l) = level {
            let (min, max) = c.level_range();
            if l < min || l > max {
                return Err(CompressionError::Level {
                    name: c.name(),
                    level: l,
                    min,
                    max,
                });
            }
        }
        Ok(c)
    }

    pub fn name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::None => "none",
            Algorithm::Xz => "xz",
            Algorithm::Zstd => "zstd",
            Algorithm::Gzip => "gzip",
            Algorithm::Bzip2 => "bzip2",
            Algorithm::Lzip => "lzip",
            Algorithm::Lzma => "lzma",
            Algorithm::Lzo => "lzop",
        }
    }

    fn level_range(&self) -> (u32, u32) {
        match self.algorithm {
            Algorithm::Zstd => (1, 22),
            Algorithm::Gzip | Algorithm::Bzip2 | Algorithm::Lzo => (1, 9),
            _ => (0, 9),
        }
    }

    /// The tarball extension: `.tar.xz`, `.tar.zst`, ... or `.tar`.
    pub fn tar_extension(&self) -> &'static str {
        match self.algorithm {
            Algorithm::None => ".tar",
            Algorithm::Xz => ".tar.xz",
            Algorithm::Zstd => ".tar.zst",
            Algorithm::Gzip => ".tar.gz",
            Algorithm::Bzip2 => ".tar.bz2",
            Algorithm::Lzip => ".tar.lz",
            Algorithm::Lzma => ".tar.lzma",
            Algorithm::Lzo => ".tar.lzo",
        }
    }

    /// The compressor's argv writing stdin to stdout (None: no compression).
    fn command(&self) -> Option<(&'static str, Vec<String>)> {
        let level = self.level.map(|l| format!("-{l}"));
        let mut args: Vec<String> = Vec::new();
        let program = match self.algorithm {
            Algorithm::None => return None,
            Algorithm::Xz | Algorithm::Lzma => {
                args.push("-T0".into());
                if self.algorithm == Algorithm::Lzma {
                    args.push("--format=lzma".into());
                }
                "xz"
            }
            Algorithm::Zstd => {
                args.push("-T0".into());
                args.push("-q".into());
                if self.level.is_some_and(|l| l > 19) {
                    args.push("--ultra".into());
                }
                "zstd"
            }
            // -n: no name and no timestamp in the header, for reproducible output
            Algorithm::Gzip => {
                args.push("-n".into());
                "gzip"
            }
            Algorithm::Bzip2 => "bzip2",
            Algorithm::Lzip => "lzip",
            Algorithm::Lzo => "lzop",
        };
        args.extend(level);
        args.push("-c".into());
        Some((program, args))
    }

    /// mksquashfs arguments for this compression.
    pub fn squashfs_args(&self) -> Result<Vec<String>, CompressionError> {
        let comp = match self.algorithm {
            Algorithm::Xz => "xz",
            Algorithm::Zstd => "zstd",
            Algorithm::Gzip => "gzip",
            Algorithm::Lzma => "lzma",
            Algorithm::Lzo => "lzo",
            Algorithm::None | Algorithm::Bzip2 | Algorithm::Lzip => {
                return Err(CompressionError::NotForSquashfs(self.name()))
            }
        };
        let mut v = vec!["-comp".to_string(), comp.to_string()];
        // zstd without a level means zstd's own default (3) for the squashfs too, as for the
        // tarball: mksquashfs's default of 15 would make the fast choice slow.
        let level = match (self.level, self.algorithm) {
            (None, Algorithm::Zstd) => Some(3),
            (l, _) => l,
        };
        if let (Some(l), Algorithm::Zstd | Algorithm::Gzip | Algorithm::Lzo) =
            (level, self.algorithm)
        {
            v.push("-Xcompression-level".into());
            v.push(l.to_string());
        }
        Ok(v)
    }
}

/// A file being written through a compressor process (or directly, for `none`).
pub struct CompressedWriter {
    child: Option<(Child, &'static str)>,
    sink: Box<dyn Write + Send>,
}

impl CompressedWriter {
    pub fn create(path: &Path, c: Compression) -> Result<CompressedWriter, CompressionError> {
        let file = std::fs::File::create(path).map_err(|source| CompressionError::Spawn {
            program: "create",
            source,
        })?;
        match c.command() {
            None => Ok(CompressedWriter {
                child: None,
                sink: Box::new(io::BufWriter::with_capacity(1 << 20, file)),
            }),
            Some((program, args)) => {
                let mut child = Command::new(program)
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(file)
                    .spawn()
                    .map_err(|source| CompressionError::Spawn { program, source })?;
                let stdin = child.stdin.take().ok_or(CompressionError::Spawn {
                    program,
                    source: io::Error::other("no stdin"),
                })?;
                Ok(CompressedWriter {
                    child: Some((child, program)),
                    sink: Box::new(io::BufWriter::with_capacity(1 << 20, stdin)),
                })
            }
        }
    }

    /// Flushes, closes the pipe and checks the compressor's exit status.
    pub fn finish(mut self) -> Result<(), CompressionError> {
        let flushed = self.sink.flush();
        drop(std::mem::replace(&mut self.sink, Box::new(io::sink())));
        if let Some((mut child, program)) = self.child.take() {
            let status = child
                .wait()
                .map_err(|source| CompressionError::Spawn { program, source })?;
            if !status.success() {
                return Err(CompressionError::Failed { program, status });
            }
        }
        flushed.map_err(|source| CompressionError::Spawn {
            program: "write",
            source,
        })
    }
}

impl Write for CompressedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl Drop for CompressedWriter {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_levels_and_extensions() {
        let c = Compression::parse("zstd-19").unwrap();
        assert_eq!(
            (c.algorithm, c.level, c.tar_extension()),
            (Algorithm::Zstd, Some(19), ".tar.zst")
        );
        assert!(Compression::parse("gzip-12").is_err());
        assert!(Compression::parse("rar").is_err());
        assert_eq!(Compression::parse("none").unwrap().tar_extension(), ".tar");
        assert!(Compression::parse("bzip2")
            .unwrap()
            .squashfs_args()
            .is_err());
        assert_eq!(
            Compression::parse("xz").unwrap().squashfs_args().unwrap(),
            vec!["-comp", "xz"]
        );
    }
}
