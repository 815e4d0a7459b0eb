//! prodready-backup against the real PostgreSQL server and pg_dump/pg_restore.

mod faults;
mod freshness;
mod pitr;
mod restore;
mod retention;
mod roundtrip;
mod s3;
mod wal;

use std::collections::BTreeMap;
use std::sync::Arc;

use prodready_backup::{BackupOptions, NoProgress, Progress, Store};
use prodready_test_support::TestDb;

pub fn quiet() -> Arc<dyn Progress> {
    Arc::new(NoProgress)
}

/// A store in a fresh temporary directory.
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("backups").to_str().unwrap()).unwrap();
    (dir, store)
}

pub fn options(db: &TestDb) -> BackupOptions {
    BackupOptions::new(db.url())
}

/// Restore options for `target_url`, two jobs, no keys.
pub fn restore_options(target_url: &str) -> prodready_backup::RestoreOptions {
    prodready_backup::RestoreOptions {
        target_url: target_url.to_owned(),
        jobs: 2,
        force: false,
        identity_files: vec![],
        tools: prodready_backup::Tools::default(),
    }
}

/// Verify options creating the scratch database next to `scratch_url`.
pub fn verify_options(scratch_url: &str) -> prodready_backup::VerifyOptions {
    prodready_backup::VerifyOptions {
        scratch_url: scratch_url.to_owned(),
        smoke_sql: vec![],
        jobs: 2,
        identity_files: vec![],
        tools: prodready_backup::Tools::default(),
    }
}

/// The edge cases a logical backup has to get right, plus one table of `big_rows` rows.
pub async fn edge_case_database(db: &TestDb, big_rows: u32) {
    let client = db.connect().await;
    // Roles are cluster-wide: create the grantee once.
    let _ = client.batch_execute("CREATE ROLE prodready_test_reader NOLOGIN").await;
    client
        .batch_execute(&format!(
            r#"
CREATE SCHEMA app; CREATE SCHEMA audit; CREATE SCHEMA "Mixed Case";
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE app.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email app.email NOT NULL UNIQUE,
    mood app.mood,
    profile jsonb,
    avatar bytea,
    created timestamptz DEFAULT '2026-01-01 00:00:00+00',
    full_name text,
    name_len int GENERATED ALWAYS AS (length(full_name)) STORED
);
COMMENT ON TABLE app.users IS 'people who log in';
COMMENT ON COLUMN app.users.email IS 'login name';
CREATE TABLE app.orders (id serial PRIMARY KEY, user_id bigint REFERENCES app.users (id), total numeric(12, 2), placed date);
CREATE INDEX orders_placed ON app.orders (placed);
CREATE TABLE audit.events (at timestamptz, payload jsonb, note text);
CREATE TABLE app.measurements (id bigint, taken date NOT NULL, value double precision) PARTITION BY RANGE (taken);
CREATE TABLE app.m2025 PARTITION OF app.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.m2026 PARTITION OF app.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE "Mixed Case"."Odd ""Table""" (k text PRIMARY KEY, v text);
CREATE TABLE app.base (id int, kind text);
CREATE TABLE app.child (extra text) INHERITS (app.base);
CREATE UNLOGGED TABLE app.cache (k text, v text);
CREATE TABLE app.dropped_col (a int, b int, c int);
CREATE TABLE app.no_columns ();
ALTER TABLE app.dropped_col DROP COLUMN b;
CREATE VIEW app.user_orders AS
    SELECT u.email, count(o.*) AS orders FROM app.users u LEFT JOIN app.orders o ON o.user_id = u.id GROUP BY u.email;
CREATE MATERIALIZED VIEW app.order_totals AS SELECT user_id, sum(total) AS total FROM app.orders GROUP BY user_id;
GRANT USAGE ON SCHEMA app TO prodready_test_reader;
GRANT SELECT ON app.users, app.user_orders TO prodready_test_reader;

INSERT INTO app.users (email, mood, profile, avatar, full_name)
    SELECT 'u' || i || '@example.com', (ARRAY['sad', 'ok', 'happy'])[1 + i % 3]::app.mood,
           jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b'), 'quote', 'it''s "q"'),
           decode(md5(i::text), 'hex'), 'Name ' || i || E'\twith tab\nand newline \\ backslash'
    FROM generate_series(1, 5000) i;
ALTER TABLE app.users ALTER COLUMN id RESTART WITH 900000;
INSERT INTO app.users (email, full_name) VALUES ('late@example.com', NULL);
INSERT INTO app.orders (user_id, total, placed)
    SELECT 1 + i % 5000, (i % 1000) / 7.0, date '2025-01-01' + i % 600 FROM generate_series(1, 20000) i;
SELECT setval(pg_get_serial_sequence('app.orders', 'id'), 500000);
INSERT INTO app.orders (user_id, total, placed) VALUES (1, 1.00, '2026-06-01');
INSERT INTO audit.events
    SELECT timestamptz '2026-01-01' + i * interval '1 second', jsonb_build_object('n', i, 'ok', i % 2 = 0), NULL
    FROM generate_series(1, {big_rows}) i;
INSERT INTO app.measurements SELECT i, date '2025-06-01' + (i % 400), i / 3.0 FROM generate_series(1, 10000) i;
INSERT INTO "Mixed Case"."Odd ""Table""" VALUES ('a', 'b'), (E'back\\slash', NULL), ('', '');
INSERT INTO app.base VALUES (1, 'base');
INSERT INTO app.child VALUES (2, 'child', 'x');
INSERT INTO app.cache VALUES ('k', 'v');
INSERT INTO app.dropped_col VALUES (1, 3), (4, 6);
INSERT INTO app.no_columns DEFAULT VALUES; INSERT INTO app.no_columns DEFAULT VALUES;
SELECT lo_from_bytea(0, decode(repeat('ab', 100000), 'hex'));
SELECT lo_from_bytea(0, 'small');
REFRESH MATERIALIZED VIEW app.order_totals;

-- Every kind of index amcheck must check or skip: partitioned (with sub-partitions and primary keys),
-- hash, GIN, GiST, BRIN, expression, partial, on an unlogged table and on a materialized view.
CREATE INDEX measurements_taken ON app.measurements (taken);
CREATE TABLE app.readings (id bigint, taken date, region text, v int, PRIMARY KEY (id, taken, region))
    PARTITION BY RANGE (taken);
CREATE TABLE app.r2026 PARTITION OF app.readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    PARTITION BY LIST (region);
CREATE TABLE app.r2026_eu PARTITION OF app.r2026 FOR VALUES IN ('eu');
CREATE TABLE app.r2026_us PARTITION OF app.r2026 FOR VALUES IN ('us');
INSERT INTO app.readings SELECT i, date '2026-01-01' + i % 300, (ARRAY['eu', 'us'])[1 + i % 2], i
    FROM generate_series(1, 3000) i;
CREATE INDEX users_email_hash ON app.users USING hash (email);
CREATE INDEX users_profile_gin ON app.users USING gin (profile);
CREATE TABLE app.slots (id int PRIMARY KEY, during tsrange);
INSERT INTO app.slots SELECT i, tsrange(timestamp '2026-01-01' + i * interval '1 hour', timestamp '2026-01-01' + (i + 1) * interval '1 hour')
    FROM generate_series(1, 500) i;
CREATE INDEX slots_during ON app.slots USING gist (during);
CREATE INDEX events_at_brin ON audit.events USING brin (at);
CREATE INDEX users_lower_email ON app.users (lower(email));
CREATE INDEX orders_big ON app.orders (total) WHERE total > 100;
CREATE INDEX cache_k ON app.cache (k);
CREATE UNIQUE INDEX order_totals_user ON app.order_totals (user_id);
CREATE TABLE app.dupes (v int);
INSERT INTO app.dupes VALUES (1), (1);
ANALYZE;
"#
        ))
        .await
        .unwrap();
    // A failed concurrent build leaves an invalid index behind (pg_dump leaves it out, as we do).
    let failed = client.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_v ON app.dupes (v)").await;
    assert!(failed.is_err(), "duplicates make the unique build fail");
    let invalid: bool = client
        .query_one("SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'app.dupes_v'::regclass", &[])
        .await
        .unwrap()
        .get(0);
    assert!(invalid, "the failed build left an invalid index");
}

/// Every table's and materialized view's row count and content hash.
pub async fn fingerprints(url: &str) -> BTreeMap<String, (i64, String)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let tables = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for row in tables {
        let name: String = row.get(0);
        let fp = client
            .query_one(
                &format!("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM ONLY {name} t"),
                &[],
            )
            .await
            .unwrap();
        out.insert(name, (fp.get(0), fp.get(1)));
    }
    let los = client
        .query_one("SELECT count(*), md5(coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '')) FROM pg_largeobject_metadata", &[])
        .await
        .unwrap();
    out.insert("<large objects>".to_owned(), (los.get(0), los.get(1)));
    out
}

/// Sequence name -> last_value.
pub async fn sequences(url: &str) -> BTreeMap<String, Option<i64>> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .query("SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `pg_dump --schema-only`, minus the lines that differ between any two runs.
pub fn schema_only(url: &str) -> String {
    let out =
        std::process::Command::new("pg_dump").args(["--schema-only", "--dbname", url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect()
}
