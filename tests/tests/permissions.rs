//! Who may read each record, as Nextcloud says: the syncing user's level from
//! the permission letters, the owner of what is shared with them, and every
//! recipient of what they shared, inherited below shared folders.

use host_runner::model::{Permission, PermissionLevel, Principal};
use nextcloud_sim::{ShareWith, SimOptions, UserSpec};
use tests::{Account, counts};

fn account() -> Account {
    let account = Account::new(SimOptions::default());
    let sim = account.sim();
    sim.mkdir_all("/Reports 2024").unwrap();
    sim.put("/Reports 2024/Q2 résumé.pdf", "pdf").unwrap();
    sim.mkdir_all("/Team folder/inner").unwrap();
    sim.put("/Team folder/inner/notes.txt", "n").unwrap();
    sim.put("/private.txt", "p").unwrap();
    sim.add_user(UserSpec::bob()).unwrap();
    sim.as_user("bob").mkdir("/From Bob").unwrap();
    sim.as_user("bob")
        .put("/From Bob/plan.txt", "plan")
        .unwrap();
    account
}

fn permissions_of(account: &Account, path: &str) -> Vec<Permission> {
    account
        .records()
        .into_iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("{path} is not a record"))
        .record
        .permissions
}

fn has(perms: &[Permission], principal: &Principal, level: PermissionLevel) -> bool {
    perms
        .iter()
        .any(|p| &p.principal == principal && p.level == level)
}

fn bob() -> Principal {
    Principal::User {
        id: "bob".into(),
        email: Some("bob@example.test".into()),
    }
}

#[test]
fn shared_items_carry_their_recipients() {
    let account = account();
    let sim = account.sim();
    sim.share(
        "alice",
        "/Reports 2024/Q2 résumé.pdf",
        ShareWith::User("bob".into()),
        1,
    )
    .unwrap();
    sim.add_group_member("staff", "bob").unwrap();
    sim.share(
        "alice",
        "/Team folder",
        ShareWith::Group("staff".into()),
        15,
    )
    .unwrap();
    sim.share(
        "alice",
        "/private.txt",
        ShareWith::Link {
            expires: Some(1_798_675_200),
        },
        1,
    )
    .unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();

    let pdf = permissions_of(&account, "/Reports 2024/Q2 résumé.pdf");
    assert_eq!(
        pdf[0].level,
        PermissionLevel::Owner,
        "alice owns it: {pdf:?}"
    );
    assert!(has(&pdf, &bob(), PermissionLevel::Read), "{pdf:?}");

    let group = Principal::Group { id: "staff".into() };
    for path in [
        "/Team folder",
        "/Team folder/inner",
        "/Team folder/inner/notes.txt",
    ] {
        let perms = permissions_of(&account, path);
        assert!(
            has(&perms, &group, PermissionLevel::Write),
            "{path}: {perms:?}"
        );
    }
    let link = permissions_of(&account, "/private.txt");
    assert!(
        link.iter().any(|p| matches!(
            &p.principal,
            Principal::AnyoneWithLink {
                expires: Some(_),
                ..
            }
        )),
        "{link:?}"
    );
    assert_eq!(
        permissions_of(&account, "/Reports 2024").len(),
        1,
        "the folder itself is not shared"
    );
}

#[test]
fn a_folder_shared_to_the_user_is_never_theirs() {
    let account = account();
    let sim = account.sim();
    sim.share("bob", "/From Bob", ShareWith::User("alice".into()), 31)
        .unwrap();
    sim.as_user("bob").mkdir("/Read only").unwrap();
    sim.as_user("bob").put("/Read only/r.txt", "r").unwrap();
    sim.share("bob", "/Read only", ShareWith::User("alice".into()), 1)
        .unwrap();
    account.sync().unwrap();
    account.assert_mirrors_server();
    for path in ["/From Bob", "/From Bob/plan.txt"] {
        let perms = permissions_of(&account, path);
        assert_eq!(perms[0].level, PermissionLevel::Write, "{path}: {perms:?}");
        assert!(
            perms.iter().any(
                |p| matches!(&p.principal, Principal::User { id, .. } if id == "bob")
                    && p.level == PermissionLevel::Owner
            ),
            "{path} names its owner: {perms:?}"
        );
    }
    // The mount point's letters allow delete and rename (unshare, move the
    // mount); its share bits say read.
    for path in ["/Read only", "/Read only/r.txt"] {
        let perms = permissions_of(&account, path);
        assert_eq!(perms[0].level, PermissionLevel::Read, "{path}: {perms:?}");
    }
}

#[test]
fn share_changes_reach_the_records_at_the_next_incremental_sync() {
    let account = account();
    let sim = account.sim();
    let share = sim
        .share("alice", "/Team folder", ShareWith::User("bob".into()), 1)
        .unwrap();
    account.sync().unwrap();
    assert!(has(
        &permissions_of(&account, "/Team folder/inner/notes.txt"),
        &bob(),
        PermissionLevel::Read
    ));

    sim.unshare(share).unwrap();
    sim.reset_requests();
    let report = account.sync().unwrap();
    assert_eq!(report.mode, host_runner::SyncMode::Incremental);
    assert_eq!(
        report.metadata_updated, 3,
        "the folder and what is below it: {report:?}"
    );
    let notes = permissions_of(&account, "/Team folder/inner/notes.txt");
    assert_eq!(notes.len(), 1, "bob's access is gone: {notes:?}");
    account.assert_mirrors_server();

    // Nothing changed since: two requests, nothing sent.
    sim.reset_requests();
    let quiet = account.sync().unwrap();
    assert_eq!(counts(&quiet), (0, 0, 0, 0));
    assert!(sim.request_count() <= 2, "{:?}", sim.requests());

    let fresh = account.twin_fresh();
    fresh.sync().unwrap();
    assert_eq!(
        fresh.records_without_versions(),
        account.records_without_versions()
    );
}

/// Issue 11's conformance run: a mount point's letters depend on how it is
/// asked for (`SGD` to a `Depth: 0` request, `SGDNV` in its folder's
/// listing, the bare share bits in SEARCH). An incremental sync that read
/// it by `Depth: 0` must still leave what a fresh full sync would.
#[test]
fn a_mount_point_keeps_its_letters_whichever_way_it_is_read() {
    let account = account();
    let sim = account.sim();
    sim.as_user("bob").mkdir("/Read only").unwrap();
    sim.as_user("bob").put("/Read only/r.txt", "r").unwrap();
    sim.share("bob", "/Read only", ShareWith::User("alice".into()), 1)
        .unwrap();
    account.sync().unwrap();
    let letters = |a: &Account| {
        a.records()
            .into_iter()
            .find(|r| r.path == "/Read only")
            .unwrap()
            .record
            .permission_letters
    };
    assert_eq!(letters(&account), "SGDNV");
    // The owner's edit makes the next sync refresh the mount point itself.
    sim.as_user("bob")
        .put("/Read only/r.txt", "changed")
        .unwrap();
    let report = account.sync().unwrap();
    assert_eq!(report.mode, host_runner::SyncMode::Incremental);
    assert_eq!(letters(&account), "SGDNV");
    let fresh = account.twin_fresh();
    fresh.sync().unwrap();
    assert_eq!(
        fresh.records_without_versions(),
        account.records_without_versions()
    );
}
