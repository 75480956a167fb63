//! Owned text, narrowed without copying.

/// The part of `text` that `part` picks, in the same allocation: most
/// values a listing carries need nothing taken off (an etag only its
/// quotes), and a listing carries a dozen per entry.
pub fn keep(mut text: String, part: impl Fn(&str) -> &str) -> String {
    let picked = part(&text);
    let start = picked.as_ptr() as usize - text.as_ptr() as usize;
    let end = start + picked.len();
    text.truncate(end);
    text.drain(..start);
    text
}

#[cfg(test)]
mod tests {
    use super::keep;

    #[test]
    fn keeps_the_picked_part() {
        assert_eq!(
            keep(" \"e1\" ".into(), |t| t.trim().trim_matches('"')),
            "e1"
        );
        assert_eq!(keep("abc".into(), str::trim), "abc");
        assert_eq!(keep("  ".into(), str::trim), "");
        assert_eq!(keep("ü x ".into(), str::trim_end), "ü x");
    }
}
