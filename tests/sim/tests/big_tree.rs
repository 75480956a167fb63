//! A generated 100k-entry tree listed through one streamed Depth: infinity PROPFIND.

mod common;

use std::io::Read;

use common::*;
use nextcloud_sim::{Server, SimOptions, Simulator};

/// Counts `needle` in a stream without holding the body, across chunk edges.
fn count_streamed(
    mut reader: impl Read,
    needle: &[u8],
    mut on_chunk: impl FnMut(usize),
) -> (usize, usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let (mut count, mut total) = (0, 0);
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        carry.extend_from_slice(&buf[..n]);
        count += carry.windows(needle.len()).filter(|w| *w == needle).count();
        let keep = carry.len().min(needle.len() - 1);
        carry.drain(..carry.len() - keep);
        on_chunk(total);
    }
    (count, total)
}

#[test]
fn hundred_thousand_entries_stream_through_depth_infinity() {
    let sim = Simulator::new(SimOptions::default());
    sim.generate(100_000, 42);
    let expected = sim.listing().len();
    assert_eq!(expected, 100_001);
    let server = Server::start(sim).unwrap();
    let auth = alice();
    let resp = raw(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &auth), ("Depth", "infinity")],
        request_body().as_bytes(),
    );
    assert_eq!(resp.status(), 207);
    assert!(
        resp.headers().get("content-length").is_none(),
        "the answer is streamed"
    );
    let sim = server.simulator().clone();
    let mut wrote_mid_stream = false;
    let (responses, bytes) =
        count_streamed(resp.into_body().into_reader(), b"<d:response>", |read| {
            // The lock is only held per chunk: the tree stays writable while a
            // long answer is in flight.
            if !wrote_mid_stream && read > 1_000_000 {
                sim.put("/written during the listing.txt", "hello").unwrap();
                wrote_mid_stream = true;
            }
        });
    assert!(wrote_mid_stream);
    // The new file sorts before most root entries, which were already sent.
    assert!(
        responses == expected || responses == expected + 1,
        "{responses} of {expected}"
    );
    assert!(
        bytes > 50_000_000,
        "{bytes} bytes for {responses} responses"
    );
}

#[test]
fn dropping_the_server_cuts_off_a_listing_in_flight() {
    let sim = Simulator::new(SimOptions::default());
    sim.generate(20_000, 3);
    let server = Server::start(sim).unwrap();
    let auth = alice();
    let resp = raw(
        "PROPFIND",
        &dav_url(&server, ""),
        &[("Authorization", &auth), ("Depth", "infinity")],
        request_body().as_bytes(),
    );
    let mut reader = resp.into_body().into_reader();
    let mut first = vec![0u8; 4096];
    reader.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"<?xml version=\"1.0\"?>\n<d:multistatus"));
    drop(server);
    let mut rest = Vec::new();
    let outcome = reader.read_to_end(&mut rest);
    // ~20 MB would follow; at most the chunks already buffered arrive.
    assert!(
        outcome.is_err() || rest.len() < 5_000_000,
        "{} more bytes",
        rest.len()
    );
}

#[test]
fn simulator_and_server_are_shareable() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Simulator>();
    fn assert_send<T: Send>() {}
    assert_send::<Server>();
    let sim = Simulator::new(SimOptions::default());
    let clone = sim.clone();
    clone.mkdir("/shared").unwrap();
    assert!(sim.fileid("/shared").is_some(), "clones share one tree");
}
