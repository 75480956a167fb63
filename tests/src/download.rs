//! Helpers for download tests and the download benchmark: the content as
//! the simulator serves it (read with a plain socket, so nothing of the
//! connector or the host is involved), a streaming comparison, and a child
//! process's peak memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ExitStatus};

use crate::{Account, PASSWORD};

/// Every byte outside RFC 3986's unreserved set, percent-encoded.
fn encode_segment(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The WebDAV URL path of a decoded path of the account's user.
pub fn dav_path(account: &Account, path: &str) -> String {
    let user = account.sim().options().user_id;
    let encoded: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(encode_segment)
        .collect();
    format!(
        "{}/remote.php/dav/files/{}/{}",
        account.sim().options().subpath,
        encode_segment(&user),
        encoded.join("/")
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Authorization` for the account's login and the test password.
pub fn basic_auth(account: &Account) -> String {
    let login = account.sim().options().login;
    format!("Basic {}", base64(format!("{login}:{PASSWORD}").as_bytes()))
}

/// A GET of `path` over a plain socket: its length and a reader of its body.
pub fn served(account: &Account, path: &str) -> (u64, impl Read) {
    let base = account.server.base_url();
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let host = host.split('/').next().unwrap().to_string();
    let mut stream = TcpStream::connect(&host).expect("connect to the simulator");
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        dav_path(account, path),
        basic_auth(account)
    )
    .unwrap();
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = Some(v.trim().parse::<u64>().unwrap());
        }
    }
    let length = length.expect("the simulator sends Content-Length");
    (length, reader.take(length))
}

/// Reads `a` and `b` side by side; their common length, or where they differ.
pub fn same_bytes(mut a: impl Read, mut b: impl Read) -> Result<u64, String> {
    let mut x = vec![0u8; 1 << 20];
    let mut y = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = fill(&mut a, &mut x);
        let m = fill(&mut b, &mut y);
        if x[..n.min(m)] != y[..n.min(m)] {
            let i = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(0);
            return Err(format!("they differ at byte {}", at + i as u64));
        }
        if n != m {
            return Err(format!(
                "one ends at byte {}, the other goes on",
                at + n.min(m) as u64
            ));
        }
        if n == 0 {
            return Ok(at);
        }
        at += n as u64;
    }
}

fn fill(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
    filled
}

/// The peak resident memory (`VmHWM`, KiB) of a live process.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits for `child`, reading its `VmHWM` every few milliseconds, and returns
/// its exit status and the last value read: its peak resident memory in
/// KiB, up to the last moment it was alive to be asked (after the transfer
/// a download only renames a file and prints a line).
///
/// Not `wait4`'s `ru_maxrss`: Linux carries the parent's high-water mark
/// over `fork`/`exec` into it, so a child of a big test process would
/// report the parent's size.
pub fn wait_with_peak_rss(mut child: Child) -> (ExitStatus, u64) {
    let pid = child.id();
    let mut peak = 0;
    loop {
        // Before reaping: until then the pid is still this child's.
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return (status, peak);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
