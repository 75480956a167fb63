//! The host side of the WIT `destination` resource: where a record's content
//! goes when the connector streams it.

use std::io::Write;

pub struct Destination {
    writer: Box<dyn Write + Send>,
    written: u64,
}

impl Destination {
    pub fn new(writer: impl Write + Send + 'static) -> Destination {
        Destination {
            writer: Box::new(writer),
            written: 0,
        }
    }

    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(chunk)
            .map_err(|e| format!("writing the content failed: {e}"))?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<u64> {
        self.writer.flush()?;
        Ok(self.written)
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}
