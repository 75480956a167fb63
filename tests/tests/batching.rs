//! `batch_size` bounds every batch the sink receives and every commit: the
//! host counts the sink calls and refuses larger ones.

use nextcloud_sim::SimOptions;
use tests::Account;

#[test]
fn a_full_sync_sends_ceil_n_over_batch_size_sink_calls() {
    for (entries, batch) in [(400usize, 7u32), (1000, 100)] {
        let account =
            Account::with_settings(SimOptions::default(), &format!("batch_size = {batch}"));
        account.sim().generate(entries, 3);
        let report = account.sync().unwrap();
        let listed = account.sim().listing().len() as u64;
        assert_eq!(report.new, listed);
        assert!(
            report.largest_batch <= u64::from(batch),
            "a sink call carried {} changes, more than {batch}",
            report.largest_batch
        );
        // Every change went through the sink, at most `batch` at a time, and
        // the batches were full: no more calls than needed.
        assert_eq!(
            report.sink_calls,
            listed.div_ceil(u64::from(batch)),
            "{report:?}"
        );
        assert!(
            report.commits >= report.sink_calls,
            "each batch is committed before the next: {report:?}"
        );
        account.assert_mirrors_server();
    }
}

#[test]
fn an_unchanged_account_sends_nothing_to_the_sink() {
    let account = Account::with_settings(SimOptions::default(), "batch_size = 5");
    account.sim().populate_sample();
    account.sync().unwrap();
    let report = account.sync().unwrap();
    assert_eq!(report.sink_calls, 0, "{report:?}");
}
