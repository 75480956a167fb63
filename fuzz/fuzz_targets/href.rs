//! Between server hrefs and record paths, on arbitrary input. Never a panic;
//! an accepted href gives a rooted path without empty, `.` or `..` segments
//! whose URL reads back as the same path; the URL of any decoded path stays
//! inside the user's files root, even once a client resolves dot segments.
#![no_main]

use connector::href::{DavRoot, encode_path, parent_of};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const BASES: &[&str] = &[
    "https://cloud.example.com",
    "http://127.0.0.1:8080/nextcloud",
    "https://host.example/sub%20path/",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    base: u8,
    user: &'a str,
    href: &'a str,
    segments: Vec<&'a str>,
}

fn check_path(path: &str) {
    assert!(path.starts_with('/'), "{path:?}");
    if path != "/" {
        for s in path[1..].split('/') {
            assert!(!s.is_empty() && s != "." && s != "..", "{path:?}");
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let base = BASES[input.base as usize % BASES.len()];
    let Ok(root) = DavRoot::new(base, input.user) else {
        return;
    };
    let root_path = url::Url::parse(root.root_url())
        .expect("the root URL parses")
        .path()
        .to_string();
    // Nothing in the root's own URL is resolved away (a `..` user id would).
    assert!(
        root.root_url().ends_with(&root_path),
        "{} resolves to {root_path}",
        root.root_url()
    );
    assert!(root_path.ends_with('/'));

    if let Ok(path) = root.path_of(input.href) {
        check_path(&path);
        assert_eq!(
            root.path_of(&root.url_of(&path)).as_deref(),
            Ok(path.as_str())
        );
        let _ = parent_of(&path);
    }

    // The URL of any path the connector may ask for (a record's, or one the
    // activity parser accepted: no empty, `.` or `..` segment) stays inside
    // the root once a client resolves it.
    let path = format!("/{}", input.segments.join("/"));
    let url = root.url_of(&path);
    let resolved = url::Url::parse(&url).expect("url_of gives a URL");
    let plain = path == "/"
        || path[1..]
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if plain {
        assert!(
            resolved.path().starts_with(&root_path),
            "{path:?} → {url} → {}",
            resolved.path()
        );
    }
    let _ = encode_path(&path);

    // A path of proper segments round-trips.
    let proper: Vec<&str> = input
        .segments
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && *s != "." && *s != ".." && !s.contains(['/', '\0']))
        .collect();
    if !proper.is_empty() {
        let path = format!("/{}", proper.join("/"));
        assert_eq!(
            root.path_of(&root.url_of(&path)),
            Ok(path.clone()),
            "{path:?}"
        );
    }
});
