//! Fault injection and hostile answers: each fault as a client sees it,
//! decisions reproducible from the seed, intercepts used up as asked, and
//! unavailable external storage.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nextcloud_sim::{Canned, Faults, Intercept, Server};

const MS_CLOSE: &str = "</d:multistatus>\n";

fn statuses(server: &Server, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| propfind(server, "", Some("0")).status)
        .collect()
}

/// A PROPFIND whose body is read to the end; `Err` when reading it failed.
fn propfind_body(server: &Server, rel: &str, depth: &str) -> (u16, Result<String, String>) {
    let auth = alice();
    let resp = raw(
        "PROPFIND",
        &dav_url(server, rel),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/xml; charset=utf-8"),
            ("Depth", depth),
        ],
        request_body().as_bytes(),
    );
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| e.to_string());
    (status, body)
}

#[test]
fn nothing_is_injected_until_faults_are_set_and_nothing_after_they_are_cleared() {
    let server = sample_server();
    let sim = server.simulator();
    assert_eq!(sim.faults(), None);
    assert!(statuses(&server, 5).iter().all(|s| *s == 207));
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::seeded(1)
    });
    let reply = propfind(&server, "", Some("0"));
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("<s:exception>"), "{}", reply.body);
    assert_eq!(sim.fault_counts().errors, 1);
    sim.clear_faults();
    assert!(statuses(&server, 5).iter().all(|s| *s == 207));
    assert_eq!(
        sim.fault_counts().errors,
        1,
        "counts stay until faults are set again"
    );
    // Every injected answer is in the request log.
    let log = sim.requests();
    assert_eq!(log.iter().filter(|r| r.status == 500).count(), 1);
}

#[test]
fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
    let server = sample_server();
    let sim = server.simulator();
    let faults = |seed| Faults {
        error_rate: 0.2,
        throttle_rate: 0.1,
        throttle_burst: 2,
        maintenance_rate: 0.1,
        retry_after: Some(1),
        ..Faults::seeded(seed)
    };
    sim.set_faults(faults(42));
    let first = statuses(&server, 60);
    sim.set_faults(faults(42));
    let again = statuses(&server, 60);
    sim.set_faults(faults(43));
    let other = statuses(&server, 60);
    assert_eq!(first, again);
    assert_ne!(first, other);
    for s in [500, 429, 503, 207] {
        assert!(first.contains(&s), "{s} never came in {first:?}");
    }
    let errors = first.iter().filter(|s| **s == 500).count();
    assert!(
        (3..=25).contains(&errors),
        "{errors} of 60 at a rate of 0.2"
    );
}

#[test]
fn throttling_comes_in_bursts_without_retry_after() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        throttle_rate: 0.1,
        throttle_burst: 4,
        ..Faults::seeded(7)
    });
    let mut runs = Vec::new();
    let mut run = 0;
    for _ in 0..300 {
        let reply = propfind(&server, "", Some("0"));
        if reply.status == 429 {
            assert_eq!(reply.header("retry-after"), None);
            assert!(reply.body.contains("TooManyRequests"), "{}", reply.body);
            run += 1;
        } else {
            assert_eq!(reply.status, 207);
            if run > 0 {
                runs.push(run);
            }
            run = 0;
        }
    }
    assert!(runs.len() >= 3, "only {} bursts: {runs:?}", runs.len());
    // A burst may start right after another one ends.
    assert!(runs.iter().all(|r| r % 4 == 0), "{runs:?}");
    assert_eq!(
        sim.fault_counts().throttled as usize,
        runs.iter().sum::<usize>() + run
    );
}

#[test]
fn maintenance_says_so_and_when_to_come_back() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        maintenance_rate: 1.0,
        retry_after: Some(7),
        ..Faults::seeded(3)
    });
    let reply = propfind(&server, "", Some("0"));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(reply.header("x-nextcloud-maintenance-mode"), Some("1"));
    // Before authentication, as the real server does.
    let anonymous = request(
        "GET",
        &format!("{}/status.php", server.base_url()),
        &[],
        b"",
    );
    assert_eq!(anonymous.status, 503);
    sim.set_faults(Faults {
        maintenance_rate: 1.0,
        retry_after: None,
        ..Faults::seeded(3)
    });
    assert_eq!(propfind(&server, "", Some("0")).header("retry-after"), None);
    assert_eq!(sim.fault_counts().maintenance, 1);
}

#[test]
fn a_reset_closes_the_connection_without_an_answer_and_the_server_lives_on() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        reset_rate: 1.0,
        ..Faults::seeded(5)
    });
    for _ in 0..3 {
        let auth = alice();
        let req = ureq::http::Request::builder()
            .method("GET")
            .uri(dav_url(&server, "top-level.txt"))
            .header("Authorization", auth.as_str())
            .body(())
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let err = agent.run(req).expect_err("no answer");
        assert!(
            matches!(err, ureq::Error::Io(_) | ureq::Error::Protocol(_)),
            "{err:?}"
        );
    }
    assert_eq!(sim.fault_counts().resets, 3);
    assert!(sim.requests().iter().all(|r| r.status == 0));
    sim.clear_faults();
    assert_eq!(get(&server, "top-level.txt", &[]).body, "top level file\n");
}

#[test]
fn a_truncated_207_ends_cleanly_before_its_end() {
    let server = start(Default::default());
    let sim = server.simulator();
    // Several chunks of the streamed answer.
    sim.generate(3000, 11);
    let (status, whole) = propfind_body(&server, "", "infinity");
    assert_eq!(status, 207);
    let whole = whole.unwrap();
    assert!(whole.ends_with(MS_CLOSE));
    let mut cut_at = Vec::new();
    for seed in 0..12 {
        sim.set_faults(Faults {
            truncate_rate: 1.0,
            ..Faults::seeded(seed)
        });
        let (status, cut) = propfind_body(&server, "", "infinity");
        assert_eq!(status, 207);
        let cut = cut.expect("the HTTP body ends cleanly");
        assert!(cut.len() < whole.len(), "seed {seed}: not cut");
        assert!(whole.starts_with(&cut), "seed {seed}: not a prefix");
        cut_at.push(cut.len());
    }
    assert_eq!(
        sim.fault_counts().truncated,
        1,
        "counts restart with each set"
    );
    cut_at.sort();
    cut_at.dedup();
    assert!(cut_at.len() >= 6, "cuts in too few places: {cut_at:?}");
    // Only 207s are cut.
    let reply = get(&server, "", &[]);
    assert_eq!(reply.status, 200);
}

#[test]
fn an_aborted_207_breaks_the_connection_mid_body() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        abort_rate: 1.0,
        ..Faults::seeded(9)
    });
    let (status, body) = propfind_body(&server, "", "infinity");
    assert_eq!(status, 207);
    assert!(body.is_err(), "the body read to an end: {body:?}");
    assert_eq!(sim.fault_counts().aborted, 1);
}

/// A small answer is one chunk, ready at once: the head, the cut chunk and
/// the error reach the server's HTTP layer in one go. The status must
/// still arrive before the connection breaks.
#[test]
fn an_aborted_207_of_one_chunk_still_sends_its_status() {
    let server = sample_server();
    let sim = server.simulator();
    for seed in 0..20 {
        sim.set_faults(Faults {
            abort_rate: 1.0,
            ..Faults::seeded(seed)
        });
        let (status, body) = propfind_body(&server, "", "0");
        assert_eq!(status, 207, "seed {seed}");
        assert!(
            body.is_err(),
            "seed {seed}: the body read to an end: {body:?}"
        );
    }
}

#[test]
fn slow_answers_start_late() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        slow_rate: 1.0,
        slow_ms: 300,
        ..Faults::seeded(1)
    });
    let started = Instant::now();
    assert_eq!(propfind(&server, "", Some("0")).status, 207);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.fault_counts().slowed, 1);
}

#[test]
fn a_path_prefix_limits_the_faults() {
    let server = sample_server();
    let sim = server.simulator();
    sim.set_faults(Faults {
        error_rate: 1.0,
        path_prefix: Some("/remote.php/".into()),
        ..Faults::seeded(1)
    });
    let status = request(
        "GET",
        &format!("{}/status.php", server.base_url()),
        &[],
        b"",
    );
    assert_eq!(status.status, 200);
    assert_eq!(propfind(&server, "", Some("0")).status, 500);
}

#[test]
fn an_override_answers_the_next_match_once() {
    let server = sample_server();
    let sim = server.simulator();
    let hostile =
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><d:multistatus xmlns:d=\"DAV:\"/>";
    sim.override_next(
        "PROPFIND",
        "/remote.php/dav/files/alice/",
        Canned::multistatus(hostile),
    );
    assert_eq!(sim.intercepts_pending(), 1);
    // Another method does not match.
    assert_eq!(get(&server, "top-level.txt", &[]).status, 200);
    let reply = propfind(&server, "Documents/", Some("1"));
    assert_eq!(reply.status, 207);
    assert_eq!(reply.body, hostile);
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(sim.intercepts_pending(), 0);
    assert!(
        propfind(&server, "Documents/", Some("1"))
            .body
            .contains("readme.txt")
    );
    assert_eq!(sim.fault_counts().intercepted, 1);
}

#[test]
fn intercepts_match_query_and_depth_and_count_down() {
    let server = sample_server();
    let sim = server.simulator();
    sim.intercept(
        Intercept::respond(
            "PROPFIND",
            "/remote.php/dav/",
            Canned::new(500, "depth one"),
        )
        .depth("1")
        .times(2),
    );
    sim.intercept(
        Intercept::respond(
            "",
            "/status.php",
            Canned::redirect(302, "http://elsewhere.invalid/"),
        )
        .query_contains("x=1")
        .always(),
    );
    assert_eq!(propfind(&server, "", Some("0")).status, 207);
    assert_eq!(propfind(&server, "", Some("1")).body, "depth one");
    assert_eq!(propfind(&server, "", Some("1")).body, "depth one");
    assert_eq!(propfind(&server, "", Some("1")).status, 207);
    let status_url = format!("{}/status.php", server.base_url());
    assert_eq!(request("GET", &status_url, &[], b"").status, 200);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    for _ in 0..3 {
        let reply = agent.get(format!("{status_url}?x=1")).call().unwrap();
        assert_eq!(reply.status().as_u16(), 302);
        assert_eq!(
            reply.headers().get("location").unwrap(),
            "http://elsewhere.invalid/"
        );
    }
    assert_eq!(sim.intercepts_pending(), 1, "`always` stays");
    sim.clear_intercepts();
    assert_eq!(
        request("GET", &format!("{status_url}?x=1"), &[], b"").status,
        200
    );
}

#[test]
fn a_rewrite_changes_the_real_answer() {
    let server = sample_server();
    let sim = server.simulator();
    sim.rewrite_next("PROPFIND", "/remote.php/dav/files/alice/", |body| {
        String::from_utf8(body)
            .unwrap()
            .replace("readme.txt", "README.TXT")
            .into_bytes()
    });
    let reply = propfind(&server, "Documents/", Some("1"));
    assert_eq!(reply.status, 207);
    assert!(reply.body.contains("README.TXT") && !reply.body.contains("readme.txt"));
    assert!(reply.body.ends_with(MS_CLOSE));
    assert!(
        propfind(&server, "Documents/", Some("1"))
            .body
            .contains("readme.txt")
    );
}

#[test]
fn an_unavailable_storage_is_listed_unreadable_and_answers_503() {
    let server = sample_server();
    let sim = server.simulator();
    assert!(
        sim.set_unavailable("/top-level.txt", true).is_err(),
        "files are no storages"
    );
    assert!(sim.set_unavailable("/nope", true).is_err());
    sim.set_unavailable("/Documents", true).unwrap();

    for rel in ["Documents/", "Documents/Archive/"] {
        let reply = propfind(&server, rel, Some("1"));
        assert_eq!(reply.status, 503, "{rel}");
        assert!(reply.body.contains("Storage is temporarily not available"));
    }
    assert_eq!(get(&server, "Documents/readme.txt", &[]).status, 503);

    let root = parse_multistatus(&propfind(&server, "", Some("1")).body);
    let docs = root
        .iter()
        .find(|r| r.href == "/remote.php/dav/files/alice/Documents/")
        .expect("still listed");
    assert!(docs.is_collection());
    assert_eq!(docs.shape()[0].1, "d:resourcetype");
    assert!(
        docs.propstats
            .iter()
            .any(|(s, props)| s.contains("503") && props.iter().any(|p| p.name == "oc:fileid"))
    );
    assert!(docs.prop("oc:fileid").is_none());
    assert!(docs.prop("d:getetag").is_none());

    let all = parse_multistatus(&propfind(&server, "", Some("infinity")).body);
    assert!(all.iter().all(|r| !r.href.contains("/Documents/readme")));
    let below = sim
        .listing()
        .iter()
        .filter(|e| e.path.starts_with("/Documents/"))
        .count();
    assert!(below >= 4);
    assert_eq!(
        all.len(),
        sim.listing().len() - below,
        "what is below is not listed"
    );
    assert!(
        sim.listing()
            .iter()
            .any(|e| e.path == "/Documents/readme.txt")
    );

    sim.set_unavailable("/Documents", false).unwrap();
    assert_eq!(propfind(&server, "Documents/", Some("1")).status, 207);
    let all = parse_multistatus(&propfind(&server, "", Some("infinity")).body);
    assert_eq!(all.len(), sim.listing().len());
}
