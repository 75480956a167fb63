//! The streaming multistatus reader on arbitrary bytes, whole and in random
//! chunks. It must never panic, hang or expand an entity; chunk boundaries
//! must not change what it reads; and a cut body is an error, never a short
//! listing: whatever a prefix of a body yields before it fails is a prefix
//! of what the whole body yields, and a prefix that reads cleanly reads the
//! same entries as the whole.
#![no_main]

use std::io::{BufReader, Read};

use connector::propfind::{DavEntry, MultistatusReader, ParseError};
use libfuzzer_sys::fuzz_target;

/// Hands out at most `chunk` bytes per read, as a network would.
struct Chunks<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

type Outcome = (Vec<DavEntry>, Option<ParseError>);

fn read(reader: impl Iterator<Item = Result<DavEntry, ParseError>>) -> Outcome {
    let mut entries = Vec::new();
    for item in reader {
        match item {
            Ok(e) => entries.push(e),
            Err(e) => return (entries, Some(e)),
        }
    }
    (entries, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, body)) = data.split_first() else {
        return;
    };
    let chunk = (knobs & 0x0f) as usize + 1;
    let whole = read(MultistatusReader::new(body));
    let chunked = read(MultistatusReader::new(BufReader::with_capacity(
        chunk,
        Chunks { data: body, chunk },
    )));
    assert_eq!(whole, chunked, "chunks of {chunk} read differently");

    // A cut somewhere in the body.
    if !body.is_empty() {
        let at = (knobs as usize * 7919 + body.len() / 3) % body.len();
        let (entries, error) = read(MultistatusReader::new(&body[..at]));
        assert!(
            whole.0.starts_with(&entries),
            "a cut body yielded entries the whole did not"
        );
        if error.is_none() {
            assert_eq!(
                whole,
                (entries, None),
                "a cut body read as a shorter listing"
            );
        }
    }
});
