//! Image artifacts shared by the builder, the image server and the daemon: compression, reproducible
//! tarballs, LXC metadata, Incus metadata and squashfs, safe unpacking, and published image trees
//! (LXC's download index and simplestreams) with their signing key.

pub mod compression;
pub mod fetch;
pub mod incus;
pub mod info;
pub mod lxc;
pub mod pongo;
pub mod server;
pub mod sign;
pub mod simplestreams;
pub mod squashfs;
pub mod tarball;
pub mod time;
pub mod tree;
pub mod unpack;
