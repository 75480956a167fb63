//! `host-runner changes`: the change feed ([`crate::feed`]) read by an
//! indexer, from a sequence number or a named consumer's position.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::feed::Change;
use crate::render::printable;
use crate::stop::StopFlag;
use crate::store::Store;
use crate::timefmt::now_unix;
use std::io::Write;

/// Where to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// After this sequence number (0: the start).
    Since(i64),
    /// After the consumer's acknowledged position; registers it on first use.
    Consumer(String),
}

#[derive(Debug, Clone)]
pub struct ChangesOptions {
    pub from: From,
    /// At most this many per read.
    pub limit: u32,
    /// Wait for new changes until SIGINT or SIGTERM.
    pub follow: bool,
    /// With a consumer: acknowledge what was written, once it was written.
    pub ack: bool,
}

/// Writes the changes after the start point to `out` (JSON lines with
/// `json`), acknowledging each written batch for a consumer with `ack`;
/// returns how many were written.
pub fn changes(
    config: &Config,
    options: &ChangesOptions,
    json: bool,
    out: &mut dyn Write,
    stop: &StopFlag,
) -> Result<u64> {
    if options.ack && !matches!(options.from, From::Consumer(_)) {
        return Err(Error::Config(
            "`--ack` moves a consumer's position: name one with `--consumer`".into(),
        ));
    }
    let store = Store::connect_existing(config)?;
    let feed = store.feed();
    let mut after = match &options.from {
        From::Since(seq) => *seq,
        From::Consumer(name) => feed.position(name, now_unix())?,
    };
    let mut written = 0;
    loop {
        let batch = feed.read(after, options.limit)?;
        for change in &batch {
            write_change(out, change, json)
                .and_then(|()| out.flush())
                .map_err(|e| Error::Storage(format!("cannot write the changes: {e}")))?;
        }
        if let Some(last) = batch.last() {
            after = last.seq;
            written += batch.len() as u64;
            if let (true, From::Consumer(name)) = (options.ack, &options.from) {
                feed.ack(name, after, now_unix())?;
            }
        }
        if !options.follow {
            return Ok(written);
        }
        if batch.len() as u32 == options.limit {
            continue;
        }
        // Nothing new: wait for another process's commit.
        if !feed.wait(stop)? {
            return Ok(written);
        }
    }
}

/// Moves `consumer` to `seq`; returns its position.
pub fn ack(config: &Config, consumer: &str, seq: i64) -> Result<i64> {
    Store::connect_existing(config)?
        .feed()
        .ack(consumer, seq, now_unix())
}

fn write_change(out: &mut dyn Write, change: &Change, json: bool) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, change)?;
        return writeln!(out);
    }
    let path = change.data["path"]
        .as_str()
        .or_else(|| change.data["display_name"].as_str())
        .or_else(|| change.data["name"].as_str())
        .unwrap_or("");
    writeln!(
        out,
        "{:>8}  {:<16}  {:>10}  {}",
        change.seq,
        change.kind,
        printable(&change.external_id),
        printable(path)
    )
}
