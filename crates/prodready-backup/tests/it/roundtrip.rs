use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prodready_backup::catalog;
use prodready_backup::{Tools, VerifyOptions};
use prodready_test_support::TestDb;

use crate::{edge_case_database, fingerprints, options, quiet, schema_only, sequences, temp_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_case_database_round_trips_through_backup_verify_and_restore() {
    let source = TestDb::create().await;
    edge_case_database(&source, 1_000_000).await;
    let (_dir, store) = temp_store();
    let mut opts = options(&source);
    opts.split_pages = 2_000; // splits audit.events into several ctid ranges
    let manifest = prodready_backup::backup(&store, &opts, quiet()).await.unwrap();

    let events = manifest.tables.iter().find(|t| t.schema == "audit" && t.name == "events").unwrap();
    assert_eq!(events.rows, 1_000_000);
    assert!(events.parts.len() > 1, "a big table is split into ctid ranges: {:?}", events.parts);
    let users = manifest.tables.iter().find(|t| t.name == "users").unwrap();
    assert!(!users.columns.contains(&"name_len".to_owned()), "generated columns are not copied");
    assert_eq!(manifest.large_objects.count, 2);
    assert!(!manifest.tables.iter().any(|t| t.name == "measurements"), "partitioned parents hold no data");
    assert_eq!(catalog::list(&store).unwrap().len(), 1);

    let verification = prodready_backup::verify(
        &store,
        &manifest,
        &VerifyOptions {
            scratch_url: source.url().to_owned(),
            smoke_sql: vec!["SELECT count(*) FROM app.users".into()],
            jobs: 2,
            identity_files: vec![],
            tools: Tools::default(),
        },
    )
    .await
    .unwrap();
    assert!(verification.ok, "{:?}", verification.problems);
    let checked = |prefix: &str| {
        verification
            .checked
            .iter()
            .find(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {:?}", verification.checked))
            .clone()
    };
    let amcheck = checked("amcheck bt_index_check on");
    assert!(amcheck.ends_with(" with heapallindexed)"), "{amcheck}");
    // Indexes amcheck cannot check are named, with the reason.
    let skipped = checked("amcheck skipped");
    for expected in [
        "app.measurements_taken (partitioned index",
        "app.readings_pkey (partitioned index",
        "app.r2026_pkey (partitioned index",
        "app.users_email_hash (hash index",
        "app.users_profile_gin (gin index",
        "app.slots_during (gist index",
        "audit.events_at_brin (brin index",
    ] {
        assert!(skipped.contains(expected), "{expected} not in {skipped}");
    }
    assert!(!skipped.contains("users_lower_email") && !skipped.contains("orders_big"), "{skipped}");
    let listed = &catalog::list(&store).unwrap()[0];
    assert_eq!(listed.verify_ok, Some(true));
    assert!(listed.last_verified_ok_at.is_some());

    let target = TestDb::create().await;
    let report = prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(report.rows, manifest.rows());

    assert_eq!(schema_only(source.url()), schema_only(target.url()));
    assert_eq!(fingerprints(source.url()).await, fingerprints(target.url()).await);
    let (before, after) = (sequences(source.url()).await, sequences(target.url()).await);
    assert_eq!(before, after, "no sequence is behind");
    assert!(before.values().any(|v| *v == Some(500_001)), "{before:?}");

    // A second restore into the now non-empty target is refused without --force.
    let again =
        prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet()).await;
    assert!(matches!(again, Err(prodready_backup::Error::TargetNotEmpty(_))), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_writer_is_seen_exactly_as_the_snapshot_saw_it() {
    let db = TestDb::create().await;
    let setup = db.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE ledger_a (id bigserial PRIMARY KEY, v int); CREATE TABLE ledger_b (id bigserial PRIMARY KEY, v int);
             CREATE TABLE bulk (id int, pad text);
             INSERT INTO bulk SELECT i, repeat('x', 200) FROM generate_series(1, 400000) i;
             ANALYZE",
        )
        .await
        .unwrap();
    // The writer inserts one row into each ledger per transaction: any consistent snapshot sees equal counts.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, client) = (stop.clone(), db.connect().await);
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                client
                    .batch_execute("BEGIN; INSERT INTO ledger_a (v) VALUES (1); INSERT INTO ledger_b (v) VALUES (1); COMMIT")
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_dir, store) = temp_store();
    let mut opts = options(&db);
    opts.split_pages = 1_000;
    let manifest = prodready_backup::backup(&store, &opts, quiet()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();

    let rows = |name: &str| manifest.tables.iter().find(|t| t.name == name).unwrap().rows;
    assert_eq!(rows("ledger_a"), rows("ledger_b"), "both ledgers come from one snapshot");
    assert!(
        rows("ledger_a") > 0 && rows("ledger_a") < written,
        "the writer ran before and after the snapshot"
    );

    let target = TestDb::create().await;
    prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    let restored = fingerprints(target.url()).await;
    assert_eq!(restored["public.ledger_a"].0, i64::try_from(rows("ledger_a")).unwrap());
    assert_eq!(restored["public.ledger_b"].0, restored["public.ledger_a"].0);
    assert_eq!(restored["public.bulk"].0, 400_000);
}

/// An extension's configuration table (`pg_extension_config_dump`) keeps its user rows, as pg_dump does:
/// the filter picks them at backup time, `CREATE EXTENSION` brings back the extension's own rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_configuration_tables_keep_their_user_rows() {
    prodready_test_support::install_test_extension();
    let source = TestDb::create().await;
    source
        .connect()
        .await
        .batch_execute(&format!(
            "CREATE EXTENSION {}; INSERT INTO settings VALUES ('feature_x', 'on', false), ('feature_y', 'off', false)",
            prodready_test_support::TEST_EXTENSION
        ))
        .await
        .unwrap();
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    let settings = manifest.tables.iter().find(|t| t.name == "settings").expect("the configuration table");
    assert_eq!((settings.rows, settings.condition.as_deref()), (2, Some("WHERE NOT system")));

    let verification =
        prodready_backup::verify(&store, &manifest, &crate::verify_options(source.url())).await.unwrap();
    assert!(verification.ok, "{:?}", verification.problems);
    let target = TestDb::create().await;
    prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(fingerprints(source.url()).await, fingerprints(target.url()).await);
    let rows = target
        .connect()
        .await
        .query_one("SELECT count(*) FROM settings", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(rows, 3, "the extension's own row and the two user rows");
}

/// A SQL_ASCII database may hold bytes that are not UTF-8 (what pg_dump copes with by dumping in the
/// database's encoding). The backup keeps them as they are, its verification passes (the scratch
/// database takes the data's encoding instead of the server's UTF-8), and a restore into a database of
/// the same encoding gives the same bytes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_ascii_database_with_bytes_that_are_not_utf8_backs_up_verifies_and_restores() {
    const LEGACY: &str = "TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'";
    async fn bytes(db: &TestDb) -> String {
        let query =
            "SELECT string_agg(encode(convert_to(v, 'SQL_ASCII'), 'hex'), ',' ORDER BY id) FROM legacy";
        db.connect().await.query_one(query, &[]).await.unwrap().get(0)
    }
    let source = TestDb::create_with(LEGACY).await;
    source
        .connect()
        .await
        .batch_execute(
            "CREATE TABLE legacy (id int PRIMARY KEY, v text);
             INSERT INTO legacy VALUES (1, convert_from('\\x636166e9'::bytea, 'SQL_ASCII')), (2, 'plain')",
        )
        .await
        .unwrap();
    assert_eq!(bytes(&source).await, "636166e9,706c61696e");
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&source), quiet()).await.unwrap();
    assert_eq!(manifest.data_encoding.as_deref(), Some("SQL_ASCII"));

    let verified =
        prodready_backup::verify(&store, &manifest, &crate::verify_options(source.url())).await.unwrap();
    assert!(verified.ok, "{:?}", verified.problems);
    assert!(verified.checked.iter().any(|c| c.contains("encoding SQL_ASCII")), "{:?}", verified.checked);

    let target = TestDb::create_with(LEGACY).await;
    prodready_backup::restore(&store, &manifest, &crate::restore_options(target.url()), quiet())
        .await
        .unwrap();
    assert_eq!(bytes(&target).await, bytes(&source).await);

    // A UTF-8 source records nothing: its data is UTF-8 as every backup before this field was.
    let plain = TestDb::create().await;
    plain
        .connect()
        .await
        .batch_execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('café')")
        .await
        .unwrap();
    let manifest = prodready_backup::backup(&store, &options(&plain), quiet()).await.unwrap();
    assert_eq!(manifest.data_encoding, None);
}

/// A multi-tenant table whose owner is bound by its own row-level security policies (`FORCE ROW LEVEL
/// SECURITY`, a policy on a session setting), backed up by a superuser and verified as that owner, a
/// role without superuser or BYPASSRLS: every restored row is counted and the verification passes (the
/// policies used to hide every row from the count, failing a good backup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_forcing_its_policies_on_its_owner_verifies_as_that_owner() {
    const OWNER: &str = "prodready_test_tenant_owner";
    let db = TestDb::create().await;
    let client = db.connect().await;
    // Roles are cluster-wide: created once, left for the next run.
    let _ = client.batch_execute(&format!("CREATE ROLE {OWNER} LOGIN CREATEDB")).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE public.accounts (id int PRIMARY KEY, tenant text NOT NULL, balance numeric);
             INSERT INTO public.accounts SELECT i, 'tenant' || (i % 7), i FROM generate_series(1, 700) i;
             ALTER TABLE public.accounts OWNER TO {OWNER};
             ALTER TABLE public.accounts ENABLE ROW LEVEL SECURITY;
             ALTER TABLE public.accounts FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON public.accounts
                 USING (tenant = current_setting('app.tenant', true));
             ALTER DATABASE \"{}\" OWNER TO {OWNER};",
            db.name()
        ))
        .await
        .unwrap();
    let (_dir, store) = temp_store();
    let manifest = prodready_backup::backup(&store, &options(&db), quiet()).await.unwrap();
    assert_eq!(manifest.tables[0].rows, 700);

    let as_owner = format!("{}{}user={OWNER}", db.url(), if db.url().contains('?') { '&' } else { '?' });
    let verification =
        prodready_backup::verify(&store, &manifest, &crate::verify_options(&as_owner)).await.unwrap();
    assert!(verification.ok, "{:?}\n{:?}", verification.problems, verification.checked);
    assert!(verification.checked.iter().any(|c| c == "row counts of 1 tables"), "{:?}", verification.checked);
}
