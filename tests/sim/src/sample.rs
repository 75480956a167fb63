//! The demo tree, modelled on the tree the fixtures were captured from, plus
//! the awkward cases a connector must survive (reserved URL characters,
//! unicode, a folder called "files", a deep chain, multi-MB files).

use crate::sim::Simulator;

const README: &[u8] = b"Welcome to the Nextcloud simulator.\nThis file has a SHA1 checksum.\n";
const README_SHA1: &str = "SHA1:ea088b42b1f79810523343133d48e67f9e44ebb4";
const JAN_2020: i64 = 1_577_880_000;
const JAN_2024: i64 = 1_704_110_400;
const JUN_2019: i64 = 1_560_591_000;

impl Simulator {
    /// Builds the demo tree under the root (60 entries, root included). Calling it
    /// again overwrites the same files.
    pub fn populate_sample(&self) {
        let text = |p: &str, body: &str| {
            self.put(p, body.as_bytes())
                .unwrap_or_else(|e| panic!("sample {p}: {e}"));
        };
        let dated = |p: &str, body: &str, mtime: i64| {
            self.put_with_mtime(p, body.as_bytes(), mtime)
                .unwrap_or_else(|e| panic!("sample {p}: {e}"));
        };
        let sized = |p: &str, size: u64| {
            self.put_sized(p, size)
                .unwrap_or_else(|e| panic!("sample {p}: {e}"));
        };
        let dir = |p: &str| {
            self.mkdir_all(p)
                .unwrap_or_else(|e| panic!("sample {p}: {e}"));
        };

        dir("/Documents/Archive/2019");
        self.put("/Documents/readme.txt", README)
            .expect("sample readme");
        self.set_checksum("/Documents/readme.txt", Some(README_SHA1))
            .expect("sample checksum");
        text("/Documents/notes.md", "# Notes\n\n- buy milk\n");
        dated(
            "/Documents/Archive/2019/old.txt",
            "old archived text\n",
            JAN_2020,
        );
        dated(
            "/Documents/Archive/2019/older.txt",
            "older archived text\n",
            JUN_2019,
        );

        dir("/Photos/2024");
        sized("/Photos/2024/IMG_0001.jpg", 2_500_000);
        text("/Photos/2024/IMG_0002.jpg", "fake jpeg 0002\n");
        text("/Photos/2024/Ünïcødé 写真.png", "fake png data\n");

        dir("/Reports 2024/Drafts");
        dated(
            "/Reports 2024/Q1 résumé.pdf",
            "%PDF-1.4\n% fake pdf Q1\n%%EOF\n",
            JAN_2024,
        );
        text(
            "/Reports 2024/Q2 résumé.pdf",
            "%PDF-1.4\n% fake pdf Q2\n%%EOF\n",
        );
        text(
            "/Reports 2024/Summary & Plan #1 (100%).txt",
            "summary and plan\n",
        );
        text("/Reports 2024/Drafts/draft 1.txt", "draft one\n");

        let special = "/Spécial #1 & 100% done";
        dir(special);
        for (name, body) in [
            ("a+b.txt", "plus\n"),
            ("what?.txt", "question\n"),
            ("it's.txt", "apostrophe\n"),
            ("x;y=z.txt", "semicolon and equals\n"),
            ("日本語.txt", "nihongo\n"),
            ("emoji 🎉.txt", "party\n"),
            ("tilde~and@at:colon.txt", "left alone by the encoder\n"),
        ] {
            text(&format!("{special}/{name}"), body);
        }

        text("/100% pure.txt", "one hundred percent\n");
        text("/a#b.txt", "hash in the name\n");
        text("/top-level.txt", "top level file\n");

        dir("/Projects/alpha/src");
        dir("/Projects/alpha/files");
        text("/Projects/alpha/README.md", "# alpha\n");
        text("/Projects/alpha/src/main.py", "print('hello')\n");
        text("/Projects/alpha/src/util.py", "def util():\n    pass\n");
        text(
            "/Projects/alpha/files/not the dav root.txt",
            "a folder named files\n",
        );
        dir("/Projects/beta");
        text("/Projects/beta/data.csv", "a,b\n1,2\n");
        text("/Projects/beta/semi;colon.txt", "semicolon\n");

        let mut deep = String::from("/Deep");
        for level in 1..=11 {
            deep.push_str(&format!("/level {level:02}"));
        }
        dir(&deep);
        text(&format!("{deep}/bottom.txt"), "twelve folders down\n");

        dir("/Music");
        text("/Music/emoji 🎵 song.txt", "la la la\n");
        sized("/Music/Ελληνικά.mp3", 3_145_728);

        dir("/Videos");
        sized("/Videos/holiday 2023.mp4", 8_388_608);
        dir("/empty folder");
    }
}
