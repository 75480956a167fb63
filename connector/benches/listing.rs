//! What the guest spends per listed entry, natively: reading a PROPFIND
//! body in the simulator's shape, turning each entry into a record,
//! placing it. The guest runs the same code compiled to WebAssembly (about
//! 1.5-2x slower); the end-to-end cost is `target/release/bench`'s.
//!
//! ```sh
//! cargo bench -p connector --bench listing            # 100,000 entries
//! cargo bench -p connector --bench listing -- 20000
//! ```

use std::hint::black_box;
use std::time::Instant;

use connector::access::Access;
use connector::entry::Identity;
use connector::entry::{own_level, to_record};
use connector::href::DavRoot;
use connector::placement::Placer;
use connector::propfind::MultistatusReader;

/// One folder, then files in it, like the simulator's listing.
fn body(entries: usize) -> Vec<u8> {
    let mut out = String::from(
        r#"<?xml version="1.0"?>
<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">"#,
    );
    let folder = |out: &mut String, href: &str, id: usize| {
        out.push_str(&format!(r#"<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>&quot;6b0b03e0007d0&quot;</d:getetag><d:getlastmodified>Sun, 29 Nov 2026 22:34:43 GMT</d:getlastmodified><d:resourcetype><d:collection/></d:resourcetype><oc:fileid>{id}</oc:fileid><oc:permissions>RGDNVCK</oc:permissions><oc:size>1063490190</oc:size><nc:creation_time>0</nc:creation_time><oc:owner-id>alice</oc:owner-id><x1:share-permissions xmlns:x1="http://open-collaboration-services.org/ns">31</x1:share-permissions><nc:is-mount-root>false</nc:is-mount-root></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat><d:propstat><d:prop><d:getcontentlength/><d:getcontenttype/><nc:upload_time/><oc:checksums/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>"#));
    };
    folder(&mut out, "/remote.php/dav/files/alice/", 100);
    let mut id = 101;
    let mut i = 0;
    while i < entries {
        let dir = format!("/remote.php/dav/files/alice/Folder%20{id}/");
        folder(&mut out, &dir, id);
        id += 1;
        i += 1;
        for _ in 0..9.min(entries - i) {
            out.push_str(&format!(r#"<d:response><d:href>{dir}IMG_{id}%20copy.docx</d:href><d:propstat><d:prop><d:getetag>&quot;bc46b610e9d3f3751db98abcdd7d1ecc&quot;</d:getetag><d:getlastmodified>Fri, 24 Jan 2020 07:29:55 GMT</d:getlastmodified><d:getcontentlength>115810</d:getcontentlength><d:getcontenttype>application/vnd.openxmlformats-officedocument.wordprocessingml.document</d:getcontenttype><d:resourcetype/><oc:fileid>{id}</oc:fileid><oc:permissions>RGDNVW</oc:permissions><oc:size>115810</oc:size><nc:creation_time>0</nc:creation_time><nc:upload_time>1795991683</nc:upload_time><oc:owner-id>alice</oc:owner-id><x1:share-permissions xmlns:x1="http://open-collaboration-services.org/ns">19</x1:share-permissions><nc:is-mount-root>false</nc:is-mount-root></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat><d:propstat><d:prop><oc:checksums/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>"#));
            id += 1;
            i += 1;
        }
    }
    out.push_str("</d:multistatus>");
    out.into_bytes()
}

fn per_entry(what: &str, entries: usize, f: impl Fn() -> usize) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(f(), entries + 1, "{what}");
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{what:<32} {:>7.2} µs per entry (best of 5)",
        best * 1e6 / (entries + 1) as f64
    );
}

fn main() {
    let entries: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let body = body(entries);
    println!(
        "{entries} entries, {:.0} bytes each",
        body.len() as f64 / entries as f64
    );
    let root = DavRoot::new("http://127.0.0.1:8080", "alice").unwrap();
    let who = Identity {
        user_id: "alice".into(),
        display_name: "Alice".into(),
        email: None,
    };
    let access = Access::new(&[]);

    per_entry("read entries", entries, || {
        let mut read = 0;
        for entry in MultistatusReader::new(std::io::BufReader::new(&body[..])) {
            black_box(entry.unwrap());
            read += 1;
        }
        read
    });
    per_entry("read, to record", entries, || {
        let mut read = 0;
        for entry in MultistatusReader::new(std::io::BufReader::new(&body[..])) {
            black_box(to_record(entry.unwrap(), &root).unwrap());
            read += 1;
        }
        read
    });
    per_entry("read, to record, permit, place", entries, || {
        let mut placer = Placer::default();
        let mut placed = 0;
        for entry in MultistatusReader::new(std::io::BufReader::new(&body[..])) {
            let entry = entry.unwrap();
            let level = own_level(&entry);
            let mut record = to_record(entry, &root).unwrap();
            access.apply(&who, &mut record, level);
            placer
                .place(record, |r| {
                    black_box(r);
                    placed += 1;
                    Ok(())
                })
                .unwrap();
        }
        placed
    });
}
