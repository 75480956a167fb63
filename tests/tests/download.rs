//! `host-runner download` against the simulator: the real component in the
//! real host, in-process and as a child process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use connector::checksum::{Algorithm, Hasher};
use host_runner::RunOptions;
use host_runner::download::{DownloadOptions, DownloadReport, Output as Out, Select, download};
use nextcloud_sim::SimOptions;
use tests::download::{same_bytes, served, wait_with_peak_rss};
use tests::{Account, PASSWORD, PASSWORD_ENV, rogue_wasm};

fn checksum(algorithm: Algorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(algorithm);
    h.update(bytes);
    h.finish().to_string()
}

fn options(select: Select, output: &Path) -> DownloadOptions {
    DownloadOptions {
        select,
        output: Out::File(output.to_path_buf()),
        resume: false,
        if_match: false,
        progress: false,
    }
}

fn fetch(account: &Account, options: &DownloadOptions) -> host_runner::Result<DownloadReport> {
    download(
        &account.config(),
        &RunOptions::with_component(&account.component),
        options,
    )
}

fn host_runner(account: &Account, args: &[&str], password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args(args)
        .arg("--config")
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, password)
        .output()
        .expect("host-runner runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Names in the directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn out_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The sample tree (every awkward name of the fixtures) plus the name the
/// issue checks against a real server, every ASCII punctuation mark, a
/// decomposed accent and a deep chain.
fn awkward_account() -> (Account, Vec<String>) {
    let account = Account::sample();
    let sim = account.sim();
    sim.mkdir_all("/Reports 2024").unwrap();
    let extra = [
        "/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf",
        "/punctuation/ !\"#$%&'()*+,-.:;<=>?@[]^_`{|}~ .txt",
        "/punctuation/%2F not a slash %25 %zz.txt",
        "/punctuation/decomposed e\u{301}te\u{301}.txt",
        "/Deep/level 01/level 02/level 03/level 04/level 05/level 06/level 07/level 08/level 09/level 10/level 11/ünïcødé 🎵 + ; = & #.txt",
    ];
    sim.mkdir_all("/punctuation").unwrap();
    for (i, path) in extra.iter().enumerate() {
        sim.put(path, format!("content {i} of {path}\n").into_bytes())
            .unwrap();
    }
    account.sync().expect("sync");
    let files: Vec<String> = sim
        .listing()
        .into_iter()
        .filter(|e| !e.is_folder)
        .map(|e| e.path)
        .collect();
    for path in extra {
        assert!(files.iter().any(|f| f == path), "{path} is in the tree");
    }
    (account, files)
}

#[test]
fn every_awkward_name_downloads_byte_equal_by_id_and_by_path() {
    let (account, files) = awkward_account();
    let dir = out_dir();
    assert!(files.len() >= 35, "{}", files.len());
    for (i, path) in files.iter().enumerate() {
        let id = account.sim().fileid(path).unwrap().to_string();
        // Alternate the two ways of naming a record.
        let select = if i % 2 == 0 {
            Select::Id(id.clone())
        } else {
            Select::Path(path.clone())
        };
        let out = dir.path().join(format!("{i}.bin"));
        let report =
            fetch(&account, &options(select, &out)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let want = account.sim().read(path).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), want, "{path}");
        assert_eq!(report.bytes, want.len() as u64, "{path}");
        assert_eq!(report.transferred, want.len() as u64, "{path}");
        assert_eq!(&report.path, path);
        assert_eq!(report.external_id, id);
        assert!(!report.changed && !report.resumed, "{path}");
        assert_eq!(report.etag.as_deref(), Some(report.record_etag.as_str()));
    }
    // Nothing but the finished files is left: no `.part`, no etag note.
    let left = listing(dir.path());
    assert_eq!(left.len(), files.len(), "{left:?}");
    assert!(left.iter().all(|n| n.ends_with(".bin")), "{left:?}");
}

#[test]
fn the_default_output_is_the_name_and_a_directory_takes_it() {
    let (account, _) = awkward_account();
    let dir = out_dir();
    let path = "/Reports 2024/Q1 résumé #1 & 100% (final)?.pdf";
    let report = fetch(
        &account,
        &options(
            Select::Path(path.trim_start_matches('/').into()),
            dir.path(),
        ),
    )
    .unwrap();
    let out = dir.path().join("Q1 résumé #1 & 100% (final)?.pdf");
    assert_eq!(report.output.as_deref(), Some(out.to_str().unwrap()));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        account.sim().read(path).unwrap()
    );
}

#[test]
fn stored_checksums_are_verified_whatever_their_spelling() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let cases = [
        ("/sha1.bin", checksum(Algorithm::Sha1, &body)),
        (
            "/md5.bin",
            checksum(Algorithm::Md5, &body).replacen("MD5", "md5", 1),
        ),
        ("/adler.bin", checksum(Algorithm::Adler32, &body)),
        // Several, as Nextcloud stores them: SHA1 is the one checked.
        (
            "/several.bin",
            format!(
                "ADLER32:00000001 {} MD5:00000000000000000000000000000000",
                checksum(Algorithm::Sha1, &body)
            ),
        ),
    ];
    for (path, sum) in &cases {
        sim.put(path, body.clone()).unwrap();
        sim.set_checksum(path, Some(sum)).unwrap();
    }
    account.sync().unwrap();
    let dir = out_dir();
    for (path, sum) in &cases {
        let out = dir.path().join("out");
        let report = fetch(&account, &options(Select::Path(path.to_string()), &out)).unwrap();
        let want = Some(
            sum.split(' ')
                .find(|s| s.starts_with("SHA1"))
                .unwrap_or(sum),
        );
        assert_eq!(
            report.verified.as_deref().map(str::to_ascii_lowercase),
            want.map(str::to_ascii_lowercase),
            "{path}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), body);
    }
}

#[test]
fn a_checksum_mismatch_fails_and_leaves_no_file() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    sim.put_sized("/big.bin", 3 * 1024 * 1024 + 5).unwrap();
    // Right algorithm, wrong digest (the content of another file).
    sim.set_checksum("/big.bin", Some(&checksum(Algorithm::Sha1, b"other")))
        .unwrap();
    account.sync().unwrap();
    let dir = out_dir();
    let out = dir.path().join("big.bin");
    let output = host_runner(
        &account,
        &[
            "download",
            "--path",
            "/big.bin",
            "-o",
            out.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let message = text(&output);
    assert!(message.contains("checksum mismatch"), "{message}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn a_header_checksum_counts_even_when_the_records_are_older() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    sim.put("/a.txt", b"version one\n".to_vec()).unwrap();
    account.sync().unwrap();
    // Changed after the sync: new content and a checksum only the GET shows.
    sim.put("/a.txt", b"version two\n".to_vec()).unwrap();
    let sum = checksum(Algorithm::Sha1, b"version two\n");
    sim.set_checksum("/a.txt", Some(&sum)).unwrap();
    let dir = out_dir();
    let out = dir.path().join("a.txt");
    let report = fetch(&account, &options(Select::Path("/a.txt".into()), &out)).unwrap();
    assert!(report.changed);
    assert_ne!(report.etag.as_deref(), Some(report.record_etag.as_str()));
    assert_eq!(report.verified, Some(sum));
    assert_eq!(std::fs::read(&out).unwrap(), b"version two\n");
}

#[test]
fn resuming_an_interrupted_transfer_gives_the_same_bytes() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    let size = 5 * 1024 * 1024 + 123;
    sim.mkdir("/Videos").unwrap();
    sim.put_sized("/Videos/clip #2.mp4", size).unwrap();
    let content = sim.read("/Videos/clip #2.mp4").unwrap();
    let sum = checksum(Algorithm::Sha1, &content);
    sim.set_checksum("/Videos/clip #2.mp4", Some(&sum)).unwrap();
    account.sync().unwrap();
    let dir = out_dir();
    let out = dir.path().join("clip.mp4");
    // What an interrupted transfer leaves: the first bytes, in OUT.part.
    let held = 1_234_567;
    std::fs::write(dir.path().join("clip.mp4.part"), &content[..held]).unwrap();
    let report = fetch(
        &account,
        &DownloadOptions {
            resume: true,
            ..options(Select::Path("/Videos/clip #2.mp4".into()), &out)
        },
    )
    .unwrap();
    assert!(report.resumed);
    assert_eq!(report.transferred, size - held as u64);
    assert_eq!(report.bytes, size);
    // The connector saw only the tail; the host checked the whole file.
    assert_eq!(report.verified, Some(sum));
    assert!(std::fs::read(&out).unwrap() == content, "byte-identical");
    assert_eq!(listing(dir.path()), ["clip.mp4"]);
}

#[test]
fn a_resumed_file_whose_held_bytes_are_wrong_fails_the_checksum() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    sim.put_sized("/a.bin", 2_000_000).unwrap();
    let content = sim.read("/a.bin").unwrap();
    sim.set_checksum("/a.bin", Some(&checksum(Algorithm::Md5, &content)))
        .unwrap();
    account.sync().unwrap();
    let dir = out_dir();
    let out = dir.path().join("a.bin");
    let mut wrong = content[..500_000].to_vec();
    wrong[1000] ^= 0xff;
    std::fs::write(dir.path().join("a.bin.part"), &wrong).unwrap();
    let err = fetch(
        &account,
        &DownloadOptions {
            resume: true,
            ..options(Select::Path("/a.bin".into()), &out)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(err.exit_code(), 4);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn resuming_a_file_that_changed_starts_over() {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    sim.put_sized("/a.bin", 1_000_000).unwrap();
    account.sync().unwrap();
    let old = sim.read("/a.bin").unwrap();
    let dir = out_dir();
    let out = dir.path().join("a.bin");
    let part = dir.path().join("a.bin.part");
    let resume = DownloadOptions {
        resume: true,
        ..options(Select::Path("/a.bin".into()), &out)
    };

    // Held bytes of the old version; the server has a new one the records do
    // not know yet. If-Range no longer matches, so the server answers 200
    // with the whole new version, as Nextcloud does: it is written from the
    // start. (A 206 of another version is the connector's unit tests' case.)
    std::fs::write(&part, &old[..400_000]).unwrap();
    sim.advance_clock(1);
    sim.put_sized("/a.bin", 900_000).unwrap();
    let new = sim.read("/a.bin").unwrap();
    let report = fetch(&account, &resume).unwrap();
    assert!(!report.resumed && report.changed);
    assert_eq!(report.transferred, 900_000);
    assert!(std::fs::read(&out).unwrap() == new);

    // The note beside OUT.part says which version it holds: after a sync
    // brought the records up to date, old held bytes are not continued.
    std::fs::write(&part, &old[..400_000]).unwrap();
    std::fs::write(dir.path().join("a.bin.part.etag"), "an-old-etag").unwrap();
    account.sync().unwrap();
    let report = fetch(&account, &resume).unwrap();
    assert!(!report.resumed && !report.changed);
    assert!(std::fs::read(&out).unwrap() == new);
    assert_eq!(listing(dir.path()), ["a.bin"]);
}

#[test]
fn a_killed_download_resumes_to_the_same_bytes() {
    let account = Account::new(SimOptions::default());
    let size = 96 * 1024 * 1024;
    account.sim().mkdir("/big").unwrap();
    account.sim().put_sized("/big/video.mkv", size).unwrap();
    account.sync().unwrap();
    let dir = out_dir();
    let out = dir.path().join("video.mkv");
    let part = dir.path().join("video.mkv.part");
    let args = |resume: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"));
        c.args(["download", "--path", "/big/video.mkv", "--json", "-o"])
            .arg(&out)
            .arg("--config")
            .arg(&account.config_path)
            .arg("--component")
            .arg(&account.component)
            .env(PASSWORD_ENV, PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if resume {
            c.arg("--resume");
        }
        c
    };
    let mut child = args(true).spawn().unwrap();
    // Kill it once some bytes, not all, are on disk.
    let started = std::time::Instant::now();
    loop {
        let held = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if held > 4 * 1024 * 1024 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the download ended before it could be interrupted"
        );
        assert!(started.elapsed().as_secs() < 120, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let held = std::fs::metadata(&part).unwrap().len();
    assert!(held > 0 && held < size, "{held}");
    assert!(!out.exists(), "nothing under the final name");

    let output = args(true).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["bytes"], size);
    assert_eq!(report["transferred"], size - held, "{report}");
    let (length, body) = served(&account, "/big/video.mkv");
    assert_eq!(length, size);
    assert_eq!(same_bytes(File::open(&out).unwrap(), body), Ok(size));
    assert_eq!(listing(dir.path()), ["video.mkv"]);
}

#[test]
fn folders_missing_files_and_rejected_credentials_say_so() {
    let account = Account::sample();
    account.sync().unwrap();
    let dir = out_dir();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();

    // A folder: refused before any request.
    account.sim().reset_requests();
    let output = host_runner(
        &account,
        &["download", "--path", "/Reports 2024", "-o", out],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`/Reports 2024` is a folder"),
        "{}",
        text(&output)
    );
    assert_eq!(account.sim().request_count(), 0);

    // Unknown to the records.
    let output = host_runner(
        &account,
        &["download", "--id", "999999", "-o", out],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("no known record has the id `999999`"));

    // Gone from the server since the sync.
    account.sim().delete("/Documents/notes.md").unwrap();
    let output = host_runner(
        &account,
        &[
            "download",
            "--path",
            "/Documents/notes.md",
            "-o",
            out,
            "--json",
        ],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/Documents/notes.md no longer exists on the server"),
        "{message}"
    );

    // A revoked app password.
    account.sim().set_app_password("revoked");
    account.sim().reset_requests();
    let output = host_runner(
        &account,
        &["download", "--path", "/top-level.txt", "-o", out],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).to_lowercase().contains("app password"),
        "{}",
        text(&output)
    );
    assert_eq!(
        account.sim().request_count(),
        1,
        "one failed login, no more"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn if_match_refuses_a_file_that_changed_since_the_sync() {
    let account = Account::new(SimOptions::default());
    account.sim().put("/a.txt", b"old\n".to_vec()).unwrap();
    account.sync().unwrap();
    // A later second: within the second of its last write a file keeps its
    // etag on Nextcloud, and nothing could tell the change.
    account.sim().advance_clock(1);
    account.sim().put("/a.txt", b"new\n".to_vec()).unwrap();
    let dir = out_dir();
    let out = dir.path().join("a.txt");
    let out_s = out.to_str().unwrap();

    let output = host_runner(
        &account,
        &["download", "--path", "/a.txt", "-o", out_s, "--if-match"],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(
        text(&output).contains("changed on the server since the last sync"),
        "{}",
        text(&output)
    );
    assert!(listing(dir.path()).is_empty());

    // Without it the current version comes down, reported as changed.
    let output = host_runner(
        &account,
        &["download", "--path", "/a.txt", "-o", out_s, "--json"],
        PASSWORD,
    );
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["bytes"], 4);
    for key in [
        "etag",
        "verified",
        "resumed",
        "duration_ms",
        "path",
        "output",
    ] {
        assert!(report.get(key).is_some(), "{key} missing from {report}");
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"new\n");
}

#[test]
fn dash_streams_to_stdout() {
    let account = Account::sample();
    account.sync().unwrap();
    let path = "/Music/Ελληνικά.mp3";
    let output = host_runner(&account, &["download", "--path", path, "-o", "-"], PASSWORD);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout == account.sim().read(path).unwrap());
    let output = host_runner(
        &account,
        &["download", "--path", path, "-o", "-", "--json"],
        PASSWORD,
    );
    assert_eq!(output.status.code(), Some(2));
}

/// The issue's memory bound: a 1 GiB file through the guest, with the
/// host-runner's peak RSS (its `VmHWM` in `/proc`) under 64 MB.
#[test]
fn a_gibibyte_downloads_in_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let account = Account::new(SimOptions::default());
    account.sim().mkdir("/big").unwrap();
    account
        .sim()
        .put_sized("/big/one gibibyte.bin", SIZE)
        .unwrap();
    // Also compiles the component into the cache the child loads it from.
    account.sync().unwrap();
    let dir = out_dir();
    let out: PathBuf = dir.path().join("one gibibyte.bin");
    let child = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .args([
            "download",
            "--path",
            "/big/one gibibyte.bin",
            "--json",
            "-o",
        ])
        .arg(&out)
        .arg("--config")
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .stdout(File::create(dir.path().join("stdout")).unwrap())
        .stderr(File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let (status, peak_kib) = wait_with_peak_rss(child);
    let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["bytes"], SIZE);
    eprintln!(
        "1 GiB download: peak RSS {} KiB, {} ms",
        peak_kib, report["duration_ms"]
    );
    assert!(
        peak_kib * 1024 < 64_000_000,
        "peak RSS {peak_kib} KiB is not under 64 MB"
    );
    let (length, body) = served(&account, "/big/one gibibyte.bin");
    assert_eq!(length, SIZE);
    assert_eq!(same_bytes(File::open(&out).unwrap(), body), Ok(SIZE));
}

/// An account whose records the hostile component committed (`bad-names`
/// in `rogue-guest`): names and paths that would leave a download folder or
/// drive a terminal, and `big`, whose content outgrows its 4 bytes.
fn bad_names_account() -> Account {
    let mut account = Account::new(SimOptions {
        login: "bad-names".into(),
        ..SimOptions::default()
    });
    account.component = rogue_wasm();
    account.sync().expect("the rogue commits its records");
    plant_records_no_component_can_put(&account);
    account
}

/// Records with paths the host refuses from a component (`..`, NUL, not
/// absolute, the root with content), written straight into the database as
/// an older host could have: `download` must refuse them on its own.
fn plant_records_no_component_can_put(account: &Account) {
    let record = |id: &str, path: &str| host_runner::model::Record {
        external_id: id.into(),
        parent_external_id: None,
        path: path.into(),
        name: path.rsplit('/').next().unwrap_or_default().into(),
        is_folder: false,
        etag: format!("etag-{id}"),
        size: 6,
        mime_type: "text/plain".into(),
        modified: 0,
        created: None,
        permission_letters: String::new(),
        permissions: vec![],
        owner_id: None,
        checksums: vec![],
    };
    let mut store = host_runner::Store::open(&account.database()).unwrap();
    store.put(vec![
        record("dotdot", "/../x"),
        record("nul", "/a\0b"),
        record("relative", "x"),
        record("root", "/"),
    ]);
    store.commit().unwrap();
}

/// `host-runner download --id ID ARGS…` run in `cwd`.
fn download_in(account: &Account, cwd: &Path, id: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .current_dir(cwd)
        .args(["download", "--id", id])
        .args(args)
        .arg("--config")
        .arg(&account.config_path)
        .arg("--component")
        .arg(&account.component)
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .expect("host-runner runs")
}

/// Every entry under `dir`, relative, sorted (symlinks not followed).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.symlink_metadata().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn hostile_names_never_write_outside_the_chosen_folder() {
    let account = bad_names_account();
    // `root/out` is the chosen folder: `../x` would land in `root`.
    let root = out_dir();
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // The file name is the last segment of the path, never the `name`
    // (`/home/x/.bashrc`).
    let report = fetch(&account, &options(Select::Id("bashrc".into()), &out)).unwrap();
    assert_eq!(
        report.output.as_deref(),
        Some(out.join(".bashrc").to_str().unwrap())
    );
    assert_eq!(std::fs::read(out.join(".bashrc")).unwrap(), b"rrrrrr");

    for id in ["dotdot", "nul", "ansi", "backslash", "relative", "root"] {
        // Into the folder, and into the current directory (no `-o`).
        let err = fetch(&account, &options(Select::Id(id.into()), &out)).unwrap_err();
        assert_eq!(err.exit_code(), 6, "{id}: {err}");
        assert!(err.to_string().contains("-o FILE"), "{id}: {err}");
        let output = download_in(&account, &out, id, &[]);
        assert_eq!(output.status.code(), Some(6), "{id}: {}", text(&output));
        assert!(
            !text(&output).contains('\x1b'),
            "{id}: a raw escape reached the terminal: {:?}",
            text(&output)
        );
    }
    let output = download_in(&account, &out, "ansi", &[]);
    assert!(
        text(&output).contains(r"/\u{1b}[2J\u{1b}]0;owned\u{7}"),
        "{}",
        text(&output)
    );

    // A file the user names is theirs to name, whatever the record's path.
    let mine = out.join("mine.txt");
    fetch(&account, &options(Select::Id("dotdot".into()), &mine)).unwrap();
    assert_eq!(std::fs::read(&mine).unwrap(), b"rrrrrr");

    assert_eq!(tree(root.path()), ["out", "out/.bashrc", "out/mine.txt"]);
}

#[test]
fn hostile_names_are_escaped_in_the_records_tree() {
    let account = bad_names_account();
    let output = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
        .arg("records")
        .arg("--config")
        .arg(&account.config_path)
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
}

#[test]
fn content_past_the_records_size_is_refused() {
    let account = bad_names_account();
    let dir = out_dir();
    // `big` is 4 bytes; the rogue writes a MiB more, ignoring the refusal,
    // and reports only what the destination took.
    let err = fetch(&account, &options(Select::Id("big".into()), dir.path())).unwrap_err();
    assert_eq!(err.exit_code(), 6, "{err}");
    assert!(
        err.to_string().contains("past the 4 bytes of /big.bin"),
        "{err}"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));

    let output = download_in(&account, dir.path(), "big", &["-o", "-"]);
    assert_eq!(output.status.code(), Some(6), "{}", text(&output));
    assert!(output.stdout.len() <= 4, "{} bytes", output.stdout.len());
}

#[test]
fn a_file_that_grew_since_the_sync_downloads_once_synced() {
    let account = Account::new(SimOptions::default());
    account.sim().put("/a.txt", b"old\n".to_vec()).unwrap();
    account.sync().unwrap();
    account.sim().advance_clock(1);
    account
        .sim()
        .put("/a.txt", b"new and longer\n".to_vec())
        .unwrap();
    let dir = out_dir();
    let out = dir.path().join("a.txt");
    let err = fetch(&account, &options(Select::Path("/a.txt".into()), &out)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("longer than the 4 bytes") && msg.contains("sync"),
        "{msg}"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
    account.sync().unwrap();
    fetch(&account, &options(Select::Path("/a.txt".into()), &out)).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"new and longer\n");
}

#[test]
fn symlinks_planted_beside_the_output_are_not_followed() {
    use std::os::unix::fs::symlink;
    let account = bad_names_account();
    let root = out_dir();
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = root.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let part = out.join(".bashrc.part");
    let note = out.join(".bashrc.part.etag");
    let fresh = root.path().join("fresh");

    // A fresh download unlinks what is there and creates its own files.
    symlink(&victim, &part).unwrap();
    symlink(&fresh, &note).unwrap();
    fetch(&account, &options(Select::Id("bashrc".into()), &out)).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!fresh.exists());
    assert_eq!(std::fs::read(out.join(".bashrc")).unwrap(), b"rrrrrr");

    // Resuming refuses to continue anything but a regular file.
    symlink(&victim, &part).unwrap();
    let err = fetch(
        &account,
        &DownloadOptions {
            resume: true,
            ..options(Select::Id("bashrc".into()), &out)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(part.symlink_metadata().unwrap().is_symlink());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_database_lock_and_partial_files_are_private() {
    let account = Account::sample();
    account.sync().unwrap();
    let db = account.database();
    assert_eq!(mode(&db), 0o600, "{}", db.display());
    let lock = db.with_extension("sqlite.lock");
    assert_eq!(mode(&lock), 0o600, "{}", lock.display());
    let wal = db.with_extension("sqlite-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "{}", wal.display());
    }
    // The partial file becomes the output: private too.
    let dir = out_dir();
    let out = dir.path().join("a.txt");
    fetch(
        &account,
        &options(Select::Path("/Documents/readme.txt".into()), &out),
    )
    .unwrap();
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn the_compiled_component_cache_is_private_or_unused() {
    let account = bad_names_account();
    let cache = out_dir();
    let dir = cache.path().join("nextcloud-connector");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_host-runner-e2e"))
            .args(["download", "--id", "bashrc", "-o"])
            .arg(cache.path().join("out.txt"))
            .arg("--config")
            .arg(&account.config_path)
            .arg("--component")
            .arg(&account.component)
            .env(PASSWORD_ENV, PASSWORD)
            .env("XDG_CACHE_HOME", cache.path())
            .env("RUST_LOG", "host_runner=debug")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    run();
    assert_eq!(mode(&dir), 0o700);
    assert!(run().contains("loaded compiled component from"));

    // A cache another user could write into is not read from.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = run();
    assert!(
        log.contains("not using the compiled-component cache")
            && !log.contains("loaded compiled component from"),
        "{log}"
    );
}
