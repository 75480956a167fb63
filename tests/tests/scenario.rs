//! The scripted scenario the real-server suite runs (`tests::scenario`),
//! here against the simulator, so a fresh clone runs it too.

use nextcloud_sim::{Server, SimOptions, Simulator, UserSpec};
use tests::PASSWORD;
use tests::files::SimFiles;
use tests::nextcloud::Dav;
use tests::remote::RemoteAccount;
use tests::scenario;

#[test]
fn every_step_syncs_by_activity_and_mirrors_the_simulator() {
    let sim = Simulator::new(SimOptions {
        app_password: PASSWORD.into(),
        ..SimOptions::default()
    });
    sim.add_user(UserSpec::bob()).unwrap();
    let server = Server::start(sim.clone()).expect("simulator starts");
    let base = server.base_url();
    let account = |_| {
        RemoteAccount::new(
            env!("CARGO_BIN_EXE_host-runner-e2e").as_ref(),
            &base,
            "alice",
            PASSWORD,
            "",
        )
    };
    let alice = SimFiles {
        sim: sim.clone(),
        user: "alice".into(),
    };
    let bob = SimFiles {
        sim: sim.clone(),
        user: "bob".into(),
    };
    let unchanged = scenario::run(
        &alice,
        &bob,
        "bob",
        &Dav::new(&base, "alice", PASSWORD),
        &account(()),
        &account(()),
    )
    .unwrap();
    assert!(
        unchanged.count("requests") <= 2,
        "a sync with no change sent {} requests",
        unchanged.count("requests")
    );
}
