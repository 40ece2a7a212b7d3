//! The user's terminal side of attach and console: raw mode, copying bytes between the terminal
//! and a pty master (or the monitor's console stream), window-size forwarding, and the `Ctrl-a q`
//! escape of lxc-console.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};

static WINCH: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: i32) {
    WINCH.store(true, Ordering::SeqCst);
}

/// How a proxy session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyEnd {
    /// The other side hung up (the command exited, the container stopped).
    Closed,
    /// The user typed the escape sequence.
    Detached,
}

/// Puts stdin in raw mode for its lifetime (restored on drop, also on panic unwinding).
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = warren_sys::std_fd(0);
        let saved = termios::tcgetattr(stdin).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin, SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = termios::tcsetattr(warren_sys::std_fd(0), SetArg::TCSAFLUSH, orig);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// Copy stdin -> `peer` and `peer` -> stdout until `peer` hangs up. `escape`: the prefix key of
/// the detach sequence (`Ctrl-a` = 1 for lxc-console); `<escape> q` detaches, `<escape><escape>`
/// sends one escape byte. `resize_peer`: forward window-size changes (only for a real pty master).
pub fn proxy_with(
    peer: BorrowedFd<'_>,
    escape: Option<u8>,
    resize_peer: bool,
) -> std::io::Result<ProxyEnd> {
    let stdin = warren_sys::std_fd(0);
    let stdout = warren_sys::std_fd(1);
    let is_tty = nix::unistd::isatty(stdin).unwrap_or(false);
    let _raw = if is_tty { Some(RawMode::enter()) } else { None };
    if resize_peer {
        let act = SigAction::new(
            SigHandler::Handler(on_winch),
            SaFlags::empty(),
            SigSet::empty(),
        );
        let _ = warren_sys::set_signal_action(Signal::SIGWINCH, &act);
    }
    let mut stdin_open = true;
    let mut saw_escape = false;
    let mut buf = [0u8; 8192];
    loop {
        if WINCH.swap(false, Ordering::SeqCst) {
            if let Ok(size) = warren_sys::get_window_size(stdin) {
                let _ = warren_sys::set_window_size(peer, size);
            }
        }
        let mut fds = vec![PollFd::new(peer, PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let peer_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ev = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        drop(fds);
        if !peer_ev.is_empty() {
            match nix::unistd::read(peer, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => return Ok(ProxyEnd::Closed),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(e.into()),
                Ok(n) => {
                    if !write_all(stdout, &buf[..n]) {
                        return Ok(ProxyEnd::Closed);
                    }
                }
            }
        }
        if !stdin_ev.is_empty() {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let mut out = Vec::with_capacity(n);
                    for &b in &buf[..n] {
                        match escape {
                            Some(esc) if saw_escape => {
                                saw_escape = false;
                                if b == b'q' {
                                    let _ = write_all(peer, &out);
                                    return Ok(ProxyEnd::Detached);
                                }
                                out.push(esc);
                                if b != esc {
                                    out.push(b);
                                }
                            }
                            Some(esc) if b == esc => saw_escape = true,
                            _ => out.push(b),
                        }
                    }
                    if !write_all(peer, &out) {
                        return Ok(ProxyEnd::Closed);
                    }
                }
            }
        }
    }
}

/// [`proxy_with`] for a pty master: window size forwarded.
pub fn proxy(master: BorrowedFd<'_>, escape: Option<u8>) -> std::io::Result<ProxyEnd> {
    proxy_with(master, escape, true)
}
