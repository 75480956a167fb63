//! The connector's stdout and stderr: forwarded to tracing line by line, with
//! the latest lines kept so that a trap's error can show the panic message.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines kept for error reports.
const KEEP_LINES: usize = 64;
/// A longer line is cut here.
const MAX_LINE: usize = 4096;

#[derive(Default)]
struct State {
    partial: Vec<u8>,
    recent: VecDeque<String>,
}

/// One of the connector's output streams. Clones share the buffer.
#[derive(Clone)]
pub struct GuestOutput {
    stream: &'static str,
    state: Arc<Mutex<State>>,
}

impl GuestOutput {
    pub fn new(stream: &'static str) -> GuestOutput {
        GuestOutput {
            stream,
            state: Arc::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, state: &mut State, raw: &[u8]) {
        let mut line = String::from_utf8_lossy(raw).into_owned();
        line.retain(|c| c == '\t' || !c.is_control());
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        tracing::debug!(target: "connector", stream = self.stream, "{line}");
        if state.recent.len() == KEEP_LINES {
            state.recent.pop_front();
        }
        state.recent.push_back(line);
    }

    pub fn push(&self, bytes: &[u8]) {
        let mut state = self.state();
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut state.partial);
            line.extend_from_slice(&rest[..i]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.emit(&mut state, &line);
            rest = &rest[i + 1..];
        }
        state.partial.extend_from_slice(rest);
        if state.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut state.partial);
            self.emit(&mut state, &line);
        }
    }

    /// Forgets the kept lines (at the start of each call into the connector).
    pub fn clear_recent(&self) {
        let mut state = self.state();
        state.recent.clear();
    }

    /// The lines written since [`clear_recent`](Self::clear_recent), the
    /// unfinished one included.
    pub fn recent(&self) -> Vec<String> {
        let state = self.state();
        let mut lines: Vec<String> = state.recent.iter().cloned().collect();
        if !state.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&state.partial).into_owned());
        }
        lines
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The panic message in the connector's latest stderr lines, if there is one:
/// `panicked at src/x.rs:1:2: what went wrong`.
pub fn panic_message(lines: &[String]) -> Option<String> {
    let start = lines.iter().rposition(|l| l.contains("panicked at"))?;
    let head = &lines[start];
    let location = &head[head.find("panicked at")?..];
    let mut message = location.trim_end_matches(':').to_string();
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.starts_with("note: run with"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if !body.is_empty() {
        message.push_str(": ");
        message.push_str(&body.join(" / "));
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_writes_and_keeps_the_unfinished_one() {
        let out = GuestOutput::new("stderr");
        out.push(b"one\r\ntw");
        out.push(b"o\nthree");
        assert_eq!(out.recent(), ["one", "two", "three"]);
        out.clear_recent();
        assert_eq!(out.recent(), ["three"]);
        out.push(b"\x1b[31mred\x1b[0m\n");
        assert_eq!(out.recent(), ["three[31mred[0m"]);
    }

    #[test]
    fn keeps_a_bounded_tail() {
        let out = GuestOutput::new("stdout");
        for i in 0..200 {
            out.push(format!("line {i}\n").as_bytes());
        }
        let recent = out.recent();
        assert_eq!(recent.len(), KEEP_LINES);
        assert_eq!(recent.last().unwrap(), "line 199");
        out.push(&vec![b'x'; MAX_LINE * 3]);
        assert!(
            out.recent()
                .iter()
                .all(|l| l.len() <= MAX_LINE + '…'.len_utf8())
        );
    }

    #[test]
    fn finds_the_panic_message() {
        let lines: Vec<String> = [
            "starting",
            "thread '<unnamed>' panicked at src/lib.rs:10:5:",
            "index out of bounds: the len is 0 but the index is 3",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            panic_message(&lines).unwrap(),
            "panicked at src/lib.rs:10:5: index out of bounds: the len is 0 but the index is 3"
        );
        assert_eq!(panic_message(&lines[..1]), None);
    }
}
