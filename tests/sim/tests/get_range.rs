//! GET and HEAD: headers like the fixture, single ranges, synthetic bodies.

mod common;

use std::io::Read;

use common::*;

fn bytes(
    server: &nextcloud_sim::Server,
    rel: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>, Vec<(String, String)>) {
    let auth = alice();
    let mut all = vec![("Authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let resp = raw("GET", &dav_url(server, rel), &all, b"");
    let status = resp.status().as_u16();
    let hs = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let mut body = Vec::new();
    resp.into_body()
        .into_reader()
        .read_to_end(&mut body)
        .unwrap();
    (status, body, hs)
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn get_has_the_fixture_headers() {
    let server = sample_server();
    let sim = server.simulator();
    let reply = get(&server, "Reports%202024/Q1%20r%C3%A9sum%C3%A9.pdf", &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "%PDF-1.4\n% fake pdf Q1\n%%EOF\n");
    let entry = sim.entry("/Reports 2024/Q1 résumé.pdf").unwrap();
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", entry.etag).as_str())
    );
    assert_eq!(reply.header("oc-etag"), reply.header("etag"));
    assert_eq!(
        reply.header("last-modified"),
        Some("Mon, 01 Jan 2024 12:00:00 GMT")
    );
    assert_eq!(reply.header("content-type"), Some("application/pdf"));
    assert_eq!(reply.header("content-length"), Some("29"));
    assert_eq!(
        reply.header("content-disposition"),
        Some(
            "attachment; filename*=UTF-8''Q1%20r%C3%A9sum%C3%A9.pdf; filename=\"Q1%20r%C3%A9sum%C3%A9.pdf\""
        )
    );
    assert_eq!(
        reply.header("accept-ranges"),
        None,
        "the real server sends none"
    );
    assert_eq!(reply.header("oc-checksum"), None);

    let readme = get(&server, "Documents/readme.txt", &[]);
    assert_eq!(
        readme.header("oc-checksum"),
        Some("SHA1:ea088b42b1f79810523343133d48e67f9e44ebb4")
    );
}

#[test]
fn single_ranges_give_206() {
    let server = sample_server();
    let sim = server.simulator();
    let whole = sim.read("/Music/Ελληνικά.mp3").unwrap();
    let rel = "Music/%ce%95%ce%bb%ce%bb%ce%b7%ce%bd%ce%b9%ce%ba%ce%ac.mp3";
    let size = whole.len();

    let (status, body, hs) = bytes(&server, rel, &[("Range", "bytes=100-1099")]);
    assert_eq!(status, 206);
    assert_eq!(body, whole[100..1100]);
    assert_eq!(
        header(&hs, "content-range"),
        Some(format!("bytes 100-1099/{size}").as_str())
    );
    assert_eq!(header(&hs, "content-length"), Some("1000"));

    let (status, body, hs) = bytes(&server, rel, &[("Range", "bytes=3000000-")]);
    assert_eq!(status, 206);
    assert_eq!(body, whole[3_000_000..]);
    assert_eq!(
        header(&hs, "content-range"),
        Some(format!("bytes 3000000-{}/{size}", size - 1).as_str())
    );

    let (status, body, _) = bytes(&server, rel, &[("Range", "bytes=-10")]);
    assert_eq!(status, 206);
    assert_eq!(body, whole[size - 10..]);

    let (status, body, _) = bytes(&server, rel, &[("Range", "bytes=0-1,5-6")]);
    assert_eq!(
        (status, body.len()),
        (200, size),
        "multi-range is ignored, as in Sabre"
    );

    let (status, body, _) = bytes(&server, rel, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(status, 416);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("Sabre\\DAV\\Exception\\RequestedRangeNotSatisfiable"),
        "{text}"
    );
}

#[test]
fn synthetic_files_stream_their_whole_content() {
    let server = sample_server();
    let sim = server.simulator();
    let (status, body, hs) = bytes(&server, "Videos/holiday%202023.mp4", &[]);
    assert_eq!(status, 200);
    assert_eq!(body.len(), 8_388_608);
    assert_eq!(header(&hs, "content-length"), Some("8388608"));
    assert_eq!(body, sim.read("/Videos/holiday 2023.mp4").unwrap());
    assert_eq!(header(&hs, "content-type"), Some("video/mp4"));

    sim.put_sized("/Videos/other.mp4", 8_388_608).unwrap();
    assert_ne!(
        sim.read("/Videos/other.mp4").unwrap(),
        body,
        "each synthetic file has its own content"
    );
}

#[test]
fn head_conditional_and_collection_gets() {
    let server = sample_server();
    let auth = alice();
    let head = request(
        "HEAD",
        &dav_url(&server, "Documents/readme.txt"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("67"));
    assert!(head.body.is_empty());

    let etag = head.header("etag").unwrap().to_string();
    let again = get(&server, "Documents/readme.txt", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // A later second: within the second of its last write a file keeps its etag.
    server.simulator().advance_clock(1);
    server
        .simulator()
        .put("/Documents/readme.txt", "changed")
        .unwrap();
    assert_eq!(
        get(&server, "Documents/readme.txt", &[("If-None-Match", &etag)]).status,
        200
    );

    let folder = get(&server, "Documents/", &[]);
    assert_eq!(folder.status, 200);
    assert!(folder.body.starts_with("This is the WebDAV interface."));
}

/// A range is served only while `If-Range` holds (the current etag, or a
/// date the file was not modified after); otherwise the whole file comes
/// with a 200, as Nextcloud 32.0.1 answered the conformance test's resumed
/// download of a changed file.
#[test]
fn if_range_serves_the_range_only_for_the_same_version() {
    let server = sample_server();
    let sim = server.simulator();
    let rel = "Reports%202024/Q1%20r%C3%A9sum%C3%A9.pdf";
    let whole = sim.read("/Reports 2024/Q1 résumé.pdf").unwrap();
    let etag = format!(
        "\"{}\"",
        sim.entry("/Reports 2024/Q1 résumé.pdf").unwrap().etag
    );
    let range = ("Range", "bytes=10-");

    let (status, body, hs) = bytes(&server, rel, &[range, ("If-Range", &etag)]);
    assert_eq!(status, 206);
    assert_eq!(body, whole[10..]);
    assert_eq!(
        header(&hs, "content-range"),
        Some(format!("bytes 10-{}/{}", whole.len() - 1, whole.len()).as_str())
    );

    for stale in [
        "\"0123456789abcdef0123456789abcdef\"",
        etag.trim_matches('"'),
        "Thu, 01 Jan 1970 00:00:01 GMT",
    ] {
        let (status, body, hs) = bytes(&server, rel, &[range, ("If-Range", stale)]);
        assert_eq!(status, 200, "If-Range: {stale}");
        assert_eq!(body, whole, "If-Range: {stale}");
        assert_eq!(header(&hs, "content-range"), None);
    }

    let later = "Fri, 01 Jan 2100 00:00:00 GMT";
    let (status, body, _) = bytes(&server, rel, &[range, ("If-Range", later)]);
    assert_eq!(status, 206, "not modified after {later}");
    assert_eq!(body, whole[10..]);
}

/// A download's `Content-Type` is the secure type with PHP's charset for
/// text (`text/plain;charset=UTF-8` for HTML), while the listing names the
/// file's own type; as Nextcloud 32.0.1 answered the conformance test.
#[test]
fn downloads_have_the_secure_type_and_a_charset_for_text() {
    let server = sample_server();
    let sim = server.simulator();
    sim.put("/page.html", "<p>hi</p>").unwrap();
    sim.put("/notes.txt", "notes").unwrap();
    let (_, _, hs) = bytes(&server, "page.html", &[]);
    assert_eq!(
        header(&hs, "content-type"),
        Some("text/plain;charset=UTF-8")
    );
    let (_, _, hs) = bytes(&server, "notes.txt", &[]);
    assert_eq!(
        header(&hs, "content-type"),
        Some("text/plain;charset=UTF-8")
    );
    let listed = propfind(&server, "page.html", Some("0"));
    assert_eq!(
        parse_multistatus(&listed.body)[0].text("d:getcontenttype"),
        "text/html"
    );
}
