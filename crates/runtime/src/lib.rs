//! The warren engine: turns a [`spec::ContainerSpec`] into a running system container and manages it.
#![forbid(unsafe_code)]

pub mod log;

pub mod attach;
pub mod cgroup;
pub mod checkconfig;
pub mod container;
pub mod devices;
pub mod hooks;
pub mod inject;
pub mod monitor;
pub mod mountguard;
pub mod mounts;
pub mod network;
pub mod proto;
pub mod seccomp;
pub mod security;
pub mod shift;
pub mod spec;
pub mod start;
pub mod term;
pub mod userns;
