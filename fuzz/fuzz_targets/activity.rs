//! The activity page parser and the change set it feeds, on arbitrary
//! bytes: never a panic; a page is either refused or every entry names
//! objects by number with a rooted path free of empty, `.` and `..`
//! segments (whose URL would leave the user's files); ids going backwards
//! are refused, and an accepted page leaves `last_id` at its highest id.
#![no_main]

use connector::activity::{Changed, has_next, next_since, parse_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = next_since(Some(text), Some(text));
        let _ = next_since(None, Some(text));
        let _ = has_next(Some(text));
    }
    let Ok(page) = parse_page(data) else {
        return;
    };
    for a in &page {
        for (_, path) in &a.objects {
            assert!(path.starts_with('/'), "unrooted path {path:?}");
            if path != "/" {
                assert!(
                    path[1..]
                        .split('/')
                        .all(|s| !s.is_empty() && s != "." && s != ".."),
                    "a path with an empty or dot segment: {path:?}"
                );
            }
        }
    }
    let start = data.first().copied().unwrap_or(0) as u64;
    let mut changed = Changed {
        last_id: start,
        ..Changed::default()
    };
    let ascending = page
        .iter()
        .try_fold(start, |last, a| (a.id >= last).then_some(a.id));
    match changed.add(&page) {
        Ok(()) => {
            assert!(ascending.is_some(), "ids went backwards and were accepted");
            assert_eq!(changed.last_id, page.last().map_or(start, |a| a.id));
            for item in changed.items.values() {
                assert!(item.path.starts_with('/'));
            }
        }
        Err(_) => assert!(ascending.is_none(), "ascending ids were refused"),
    }
});
