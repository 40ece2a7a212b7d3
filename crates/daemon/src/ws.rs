//! The server side of a websocket (RFC 6455) as the events API needs it: the handshake, text and
//! ping frames out, and noticing the client going away.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::io::Write;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The 101 answer to a request with `Sec-WebSocket-Key: key`.
pub fn handshake(key: &str) -> String {
    let accept = base64::engine::general_purpose::STANDARD
        .encode(Sha1::digest(format!("{key}{GUID}").as_bytes()));
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
}

/// One unmasked frame (server to client).
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// One masked frame (client to server, as RFC 6455 requires of clients).
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut mask = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut mask);
    }
    let mut f = frame(opcode, &[]);
    f.truncate(1);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

pub fn send_text<W: Write>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(&frame(0x1, text.as_bytes()))?;
    w.flush()
}

pub fn send_ping<W: Write>(w: &mut W) -> std::io::Result<()> {
    w.write_all(&frame(0x9, b"keepalive"))?;
    w.flush()
}

/// One frame from the client (masked): (opcode, payload). Fragments are returned as they come.
pub fn read_frame<R: std::io::Read>(r: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head)?;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    if len > 64 << 20 {
        return Err(std::io::Error::other("websocket frame over 64 MiB"));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask)?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok((opcode, payload))
}

pub fn send_binary<W: Write>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    w.write_all(&frame(0x2, data))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::{masked_frame, read_frame};
    #[test]
    fn a_masked_frame_reads_back() {
        let f = masked_frame(0x2, b"hello");
        assert_eq!(f[1] & 0x80, 0x80);
        let (op, payload) = read_frame(&mut f.as_slice()).expect("frame");
        assert_eq!((op, payload.as_slice()), (0x2, &b"hello"[..]));
    }

    #[test]
    fn rfc_example_accept_key() {
        // RFC 6455 §1.3's example
        assert!(
            super::handshake("dGhlIHNhbXBsZSBub25jZQ==").contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(super::frame(1, b"hi"), vec![0x81, 2, b'h', b'i']);
        assert_eq!(&super::frame(1, &[0; 300])[..4], &[0x81, 126, 1, 44]);
    }
}
