//! The host side of the WIT `destination` resource: where a record's content
//! goes when the connector streams it.
//!
//! A destination is a stream (stdout, a pipe: it cannot take back what it
//! was given) or a file, which may already hold the first bytes of the
//! content (a partial download being resumed) and can be emptied when the
//! connector says the content starts over.
//!
//! A destination may have a limit: the size the records give the content.
//! The connector is not trusted to stop there, so the destination refuses a
//! write past it and remembers that it did, for the host to fail the
//! transfer even when the connector goes on as if nothing happened.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

enum Sink {
    Stream(Box<dyn Write + Send>),
    File(File),
}

/// Told the number of bytes the destination holds after each write.
pub type OnProgress = Box<dyn FnMut(u64) + Send>;

pub struct Destination {
    sink: Sink,
    /// Bytes held before the connector wrote anything (a resumed partial file).
    held: u64,
    /// Bytes written since the start or the last restart.
    written: u64,
    restarted: bool,
    /// The most bytes of content the destination takes.
    limit: Option<u64>,
    /// Whether a write past `limit` was refused.
    overflowed: bool,
    on_progress: Option<OnProgress>,
}

/// What a destination ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Bytes the connector wrote (after the last restart, if any).
    pub written: u64,
    /// Bytes held before those, kept (0 after a restart).
    pub held: u64,
    /// Whether the connector started the content over.
    pub restarted: bool,
    /// Whether the connector tried to write more than the limit.
    pub overflowed: bool,
}

impl Delivered {
    /// The length of the content held now.
    pub fn total(&self) -> u64 {
        self.held + self.written
    }
}

impl Destination {
    /// A stream: it cannot start over once something was written to it.
    pub fn new(writer: impl Write + Send + 'static) -> Destination {
        Destination {
            sink: Sink::Stream(Box::new(writer)),
            held: 0,
            written: 0,
            restarted: false,
            limit: None,
            overflowed: false,
            on_progress: None,
        }
    }

    /// Says that whoever reads the stream already holds `held` bytes of the
    /// content (a resumed transfer to a stream): they cannot be taken back,
    /// so the destination refuses to start over.
    pub fn holding(mut self, held: u64) -> Destination {
        self.held = held;
        self
    }

    /// A file positioned at its end, whose `held` bytes are the start of the
    /// content; a restart truncates it.
    pub fn file(mut file: File) -> std::io::Result<Destination> {
        let held = file.seek(SeekFrom::End(0))?;
        Ok(Destination {
            sink: Sink::File(file),
            held,
            written: 0,
            restarted: false,
            limit: None,
            overflowed: false,
            on_progress: None,
        })
    }

    /// Refuses any write that would make the content longer than `max` bytes.
    pub fn limit(mut self, max: u64) -> Destination {
        self.limit = Some(max);
        self
    }

    /// Calls `f` with the bytes held after every write and restart.
    pub fn on_progress(mut self, f: impl FnMut(u64) + Send + 'static) -> Destination {
        self.on_progress = Some(Box::new(f));
        self
    }

    fn report(&mut self) {
        let total = self.held + self.written;
        if let Some(f) = &mut self.on_progress {
            f(total);
        }
    }

    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), String> {
        let after = self.held + self.written + chunk.len() as u64;
        if let Some(max) = self.limit
            && after > max
        {
            self.overflowed = true;
            return Err(format!(
                "the content is longer than the {max} bytes the records give it; if the file grew since the last sync, sync and download again"
            ));
        }
        let result = match &mut self.sink {
            Sink::Stream(w) => w.write_all(chunk),
            Sink::File(f) => f.write_all(chunk),
        };
        result.map_err(|e| format!("writing the content failed: {e}"))?;
        self.written += chunk.len() as u64;
        self.report();
        Ok(())
    }

    /// Empties the destination: the content starts again at byte 0.
    pub fn restart(&mut self) -> Result<(), String> {
        match &mut self.sink {
            Sink::File(f) => {
                f.set_len(0)
                    .and_then(|()| f.seek(SeekFrom::Start(0)).map(drop))
                    .map_err(|e| format!("emptying the file to start over failed: {e}"))?;
            }
            Sink::Stream(_) if self.held + self.written == 0 => {}
            Sink::Stream(_) => {
                return Err(format!(
                    "cannot start over: {} bytes already went to the output stream",
                    self.held + self.written
                ));
            }
        }
        self.held = 0;
        self.written = 0;
        self.restarted = true;
        self.report();
        Ok(())
    }

    /// Flushes (a file is not synced to disk here; the caller does that
    /// before making it visible).
    pub fn finish(mut self) -> std::io::Result<Delivered> {
        match &mut self.sink {
            Sink::Stream(w) => w.flush()?,
            Sink::File(f) => f.flush()?,
        }
        Ok(Delivered {
            written: self.written,
            held: self.held,
            restarted: self.restarted,
            overflowed: self.overflowed,
        })
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_file_keeps_what_it_held_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.part");
        std::fs::write(&path, b"hello ").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut d = Destination::file(file)
            .unwrap()
            .on_progress(move |n| log.lock().unwrap().push(n));
        d.write_chunk(b"world").unwrap();
        let done = d.finish().unwrap();
        assert_eq!(
            done,
            Delivered {
                written: 5,
                held: 6,
                restarted: false,
                overflowed: false
            }
        );
        assert_eq!(done.total(), 11);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(*seen.lock().unwrap(), [11]);
    }

    #[test]
    fn a_file_restart_drops_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.part");
        std::fs::write(&path, b"stale bytes of another version").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut d = Destination::file(file).unwrap();
        d.restart().unwrap();
        d.write_chunk(b"fresh").unwrap();
        let done = d.finish().unwrap();
        assert!(done.restarted);
        assert_eq!(done.total(), 5);
        let mut s = String::new();
        File::open(&path).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "fresh");
    }

    #[test]
    fn a_stream_restarts_only_while_empty() {
        let mut d = Destination::new(Vec::new());
        d.restart().unwrap();
        d.write_chunk(b"x").unwrap();
        let err = d.restart().unwrap_err();
        assert!(err.contains("cannot start over"), "{err}");
    }

    #[test]
    fn a_limited_destination_refuses_what_goes_past_it_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.part");
        std::fs::write(&path, b"held").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut d = Destination::file(file).unwrap().limit(10);
        d.write_chunk(b"123456").unwrap();
        let err = d.write_chunk(b"7").unwrap_err();
        assert!(err.contains("longer than the 10 bytes"), "{err}");
        // A restart empties the file, not the memory of the refusal.
        d.restart().unwrap();
        d.write_chunk(b"0123456789").unwrap();
        let done = d.finish().unwrap();
        assert!(done.overflowed);
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");

        let mut d = Destination::new(Vec::new()).limit(3);
        d.write_chunk(b"abc").unwrap();
        assert!(!d.finish().unwrap().overflowed, "exactly the limit is fine");
    }

    #[test]
    fn a_stream_after_held_bytes_cannot_restart() {
        let mut d = Destination::new(Vec::new()).holding(10);
        assert!(d.restart().is_err());
        d.write_chunk(b"tail").unwrap();
        let done = d.finish().unwrap();
        assert_eq!((done.held, done.written, done.restarted), (10, 4, false));
    }
}
