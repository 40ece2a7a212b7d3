//! Image artifacts shared by the builder, the image server and the daemon: compression, reproducible
//! tarballs, LXC metadata, Incus metadata and squashfs, and safe unpacking.

pub mod compression;
pub mod incus;
pub mod lxc;
pub mod squashfs;
pub mod tarball;
pub mod unpack;
