//! The checksums Nextcloud stores for a file — `oc:checksums` in a listing,
//! the `OC-Checksum` header of a download — and computing one while the
//! content streams past.
//!
//! Nextcloud keeps whatever the uploading client sent: one or several
//! `ALGORITHM:value` entries separated by spaces (`SHA1:… MD5:… ADLER32:…`).
//! Names are matched case-insensitively; SHA1, MD5 and Adler-32 are
//! understood, anything else (SHA256, SHA3-256, …) is ignored. When several
//! are there, SHA1 is preferred, then MD5, then Adler-32.

use std::fmt;

use md5::Digest as _;

/// An algorithm this connector can verify, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    Sha1,
    Md5,
    Adler32,
}

impl Algorithm {
    /// The name Nextcloud writes.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Md5 => "MD5",
            Algorithm::Adler32 => "ADLER32",
        }
    }

    fn parse(name: &str) -> Option<Algorithm> {
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "sha1" | "sha-1" => Some(Algorithm::Sha1),
            "md5" => Some(Algorithm::Md5),
            "adler32" | "adler-32" => Some(Algorithm::Adler32),
            _ => None,
        }
    }

    /// Hex digits of a digest.
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 40,
            Algorithm::Md5 => 32,
            Algorithm::Adler32 => 8,
        }
    }
}

/// One stored or computed checksum; `value` is lower-case hex (Adler-32
/// always eight digits, although some clients store it unpadded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    pub value: String,
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.value)
    }
}

impl Checksum {
    /// `ALGORITHM:hex`, or none when the algorithm is unknown or the value
    /// is not a digest of that algorithm.
    pub fn parse(entry: &str) -> Option<Checksum> {
        let (name, value) = entry.trim().split_once(':')?;
        let algorithm = Algorithm::parse(name)?;
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = match algorithm {
            // The desktop client writes Adler-32 without leading zeros.
            Algorithm::Adler32 if value.len() <= 8 => {
                format!("{:08x}", u32::from_str_radix(value, 16).ok()?)
            }
            _ if value.len() == algorithm.hex_len() => value.to_ascii_lowercase(),
            _ => return None,
        };
        Some(Checksum { algorithm, value })
    }
}

/// Every understood checksum in `entries`; each entry may hold several,
/// separated by spaces or commas.
pub fn parse_all<'a>(entries: impl IntoIterator<Item = &'a str>) -> Vec<Checksum> {
    entries
        .into_iter()
        .flat_map(|e| e.split(|c: char| c.is_whitespace() || c == ','))
        .filter_map(Checksum::parse)
        .collect()
}

/// The checksum to verify among `checksums`: SHA1 first, then MD5, then Adler-32.
pub fn preferred(checksums: &[Checksum]) -> Option<&Checksum> {
    checksums.iter().min_by_key(|c| c.algorithm)
}

enum State {
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Adler32(adler2::Adler32),
}

/// Computes a checksum over bytes fed in any number of pieces.
pub struct Hasher {
    state: State,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => State::Md5(md5::Md5::new()),
            Algorithm::Adler32 => State::Adler32(adler2::Adler32::new()),
        };
        Hasher { state }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha1(h) => h.update(bytes),
            State::Md5(h) => h.update(bytes),
            State::Adler32(h) => h.write_slice(bytes),
        }
    }

    pub fn finish(self) -> Checksum {
        let (algorithm, value) = match self.state {
            State::Sha1(h) => (Algorithm::Sha1, hex(&h.finalize())),
            State::Md5(h) => (Algorithm::Md5, hex(&h.finalize())),
            State::Adler32(h) => (Algorithm::Adler32, format!("{:08x}", h.checksum())),
        };
        Checksum { algorithm, value }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hashes everything `reader` yields with the algorithm of `expected` and
/// says whether it matches; `Ok(Err(actual))` on a mismatch.
pub fn verify_reader(
    expected: &Checksum,
    mut reader: impl std::io::Read,
) -> std::io::Result<Result<(), Checksum>> {
    let mut hasher = Hasher::new(expected.algorithm);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    let actual = hasher.finish();
    Ok(if actual == *expected {
        Ok(())
    } else {
        Err(actual)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(algorithm: Algorithm, pieces: &[&[u8]]) -> String {
        let mut h = Hasher::new(algorithm);
        for p in pieces {
            h.update(p);
        }
        h.finish().to_string()
    }

    #[test]
    fn known_digests() {
        // RFC 3174, RFC 1321 and the zlib test vectors.
        assert_eq!(
            of(Algorithm::Sha1, &[b"abc"]),
            "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            of(Algorithm::Sha1, &[b""]),
            "SHA1:da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            of(Algorithm::Md5, &[b"abc"]),
            "MD5:900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(of(Algorithm::Adler32, &[b"Wikipedia"]), "ADLER32:11e60398");
        assert_eq!(of(Algorithm::Adler32, &[b""]), "ADLER32:00000001");
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in [Algorithm::Sha1, Algorithm::Md5, Algorithm::Adler32] {
            let whole = of(algorithm, &[&data]);
            let (a, rest) = data.split_at(1);
            let (b, c) = rest.split_at(65_535);
            assert_eq!(of(algorithm, &[a, b, &[], c]), whole, "{algorithm:?}");
        }
    }

    #[test]
    fn the_fixture_checksum_parses() {
        // From propfind-file-with-checksum.xml (Nextcloud 32).
        let c = Checksum::parse("SHA1:b899232493c720d6f062c532adfdfbf96b6dc958").unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha1);
        assert_eq!(
            c.to_string(),
            "SHA1:b899232493c720d6f062c532adfdfbf96b6dc958"
        );
    }

    #[test]
    fn names_are_case_insensitive_and_values_normalised() {
        let c = Checksum::parse("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D").unwrap();
        assert_eq!(
            c.to_string(),
            "SHA1:a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            Checksum::parse("Md5:900150983CD24FB0D6963F7D28E17F72")
                .unwrap()
                .algorithm,
            Algorithm::Md5
        );
        // Unpadded Adler-32, as the desktop client stores it.
        assert_eq!(
            Checksum::parse("Adler32:1e60398").unwrap().to_string(),
            "ADLER32:01e60398"
        );
    }

    #[test]
    fn junk_and_unknown_algorithms_are_ignored() {
        for bad in [
            "",
            "SHA1",
            "SHA1:",
            "SHA1:xyz",
            "SHA1:abc",
            "MD5:a9993e364706816aba3e25717850c26c9cd0d89d",
            "ADLER32:123456789",
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "CRC32:12345678",
        ] {
            assert_eq!(Checksum::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn several_in_one_entry_and_sha1_preferred() {
        let all = parse_all([
            "ADLER32:024d0127 MD5:900150983cd24fb0d6963f7d28e17f72",
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad,SHA1:a9993e364706816aba3e25717850c26c9cd0d89d",
        ]);
        assert_eq!(all.len(), 3);
        assert_eq!(preferred(&all).unwrap().algorithm, Algorithm::Sha1);
        let no_sha1 = parse_all(["ADLER32:024d0127", "MD5:900150983cd24fb0d6963f7d28e17f72"]);
        assert_eq!(preferred(&no_sha1).unwrap().algorithm, Algorithm::Md5);
        assert!(preferred(&parse_all(["SHA256:00"])).is_none());
    }

    #[test]
    fn verifies_a_reader() {
        let expected = Checksum::parse("SHA1:a9993e364706816aba3e25717850c26c9cd0d89d").unwrap();
        assert_eq!(verify_reader(&expected, &b"abc"[..]).unwrap(), Ok(()));
        let wrong = verify_reader(&expected, &b"abd"[..]).unwrap().unwrap_err();
        assert_eq!(wrong.algorithm, Algorithm::Sha1);
        assert_ne!(wrong, expected);
    }
}
