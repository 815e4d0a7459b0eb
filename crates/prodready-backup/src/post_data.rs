//! Splitting the schema archive's post-data section so that a big table's indexes and key constraints are
//! built as soon as its own data is loaded, while other tables still load (as `pg_restore -j` schedules
//! them), instead of after all the data.
//!
//! The plan reads the archive's table of contents with its dependencies (`pg_restore -l -v`). An entry
//! goes early only when nothing but its table's data can be missing: an `INDEX` or a `CONSTRAINT`
//! (primary key, unique, exclusion) whose dependencies are pre-data objects, one of them the `TABLE` entry
//! of a table the backup holds. Everything else (foreign keys, which need the other table's key; triggers;
//! indexes of partitioned tables and of materialized views; partition attachments; rules; materialized
//! view data) stays in the one `pg_restore -j` run after all data, which treats the entries already
//! restored as done. A table whose `TABLE` entry cannot be told apart from another by its name keeps all
//! of its entries there: the plan can lose speed, never correctness.

use std::collections::{HashMap, HashSet};

/// One entry of `pg_restore -l -v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TocEntry {
    pub id: u32,
    /// The whole line, as a `-L` list file takes it.
    pub line: String,
    /// The line after `ID; TABLEOID OID `: `DESC SCHEMA NAME OWNER`.
    rest: String,
    pub deps: Vec<u32>,
}

/// Parses a `pg_restore -l` listing (with `-v`, the `;\tdepends on:` lines after an entry).
pub(crate) fn parse_listing(text: &str) -> Vec<TocEntry> {
    let mut entries: Vec<TocEntry> = Vec::new();
    for line in text.lines() {
        if let Some(deps) =
            line.strip_prefix(';').map(str::trim_start).and_then(|l| l.strip_prefix("depends on:"))
        {
            if let Some(last) = entries.last_mut() {
                last.deps.extend(deps.split_whitespace().filter_map(|d| d.parse::<u32>().ok()));
            }
            continue;
        }
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let Some((id, after)) = line.split_once(';') else { continue };
        let Ok(id) = id.trim().parse::<u32>() else { continue };
        // ` TABLEOID OID DESC...`
        let mut fields = after.trim_start().splitn(3, ' ');
        let (Some(_), Some(_), Some(rest)) = (fields.next(), fields.next(), fields.next()) else { continue };
        entries.push(TocEntry { id, line: line.to_owned(), rest: rest.to_owned(), deps: Vec::new() });
    }
    entries
}

/// Which post-data entries run when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// For each table of the backup (in the manifest's order): the entries to restore once its data is
    /// loaded. Empty for tables that are not `eligible`.
    pub early: Vec<Vec<TocEntry>>,
    /// The post-data entries left for the run after all data.
    pub rest: Vec<TocEntry>,
}

impl Plan {
    pub(crate) fn has_early(&self) -> bool {
        self.early.iter().any(|e| !e.is_empty())
    }
}

/// Plans the post-data section. `all` is the whole listing, `post` the ids of its post-data section
/// (`pg_restore -l --section=post-data`), `tables` the backup's tables as (schema, name), and `eligible`
/// says, per table, whether an early build is worth a `pg_restore` run of its own (a big table).
pub(crate) fn plan(
    all: &[TocEntry],
    post: &HashSet<u32>,
    tables: &[(&str, &str)],
    eligible: &[bool],
) -> Plan {
    // TABLE entries -> the backup's table, where exactly one table matches and no other entry claims it.
    let mut table_of: HashMap<u32, usize> = HashMap::new();
    let mut claims = vec![0usize; tables.len()];
    let mut table_entries: HashSet<u32> = HashSet::new();
    for entry in all {
        let Some(rest) = entry.rest.strip_prefix("TABLE ") else { continue };
        if rest.starts_with("DATA ") || rest.starts_with("ATTACH ") {
            continue;
        }
        table_entries.insert(entry.id);
        let matches: Vec<usize> = tables
            .iter()
            .enumerate()
            .filter(|(_, (schema, name))| rest.starts_with(&format!("{schema} {name} ")))
            .map(|(i, _)| i)
            .collect();
        if let [i] = matches[..] {
            table_of.insert(entry.id, i);
            claims[i] += 1;
        } else {
            for i in matches {
                claims[i] += 2; // ambiguous: never early
            }
        }
    }
    let mut out = Plan { early: vec![Vec::new(); tables.len()], rest: Vec::new() };
    for entry in all.iter().filter(|e| post.contains(&e.id)) {
        match early_table(entry, post, &table_entries, &table_of) {
            Some(t) if eligible.get(t) == Some(&true) && claims[t] == 1 => out.early[t].push(entry.clone()),
            _ => out.rest.push(entry.clone()),
        }
    }
    out
}

/// The one table whose loaded data is all `entry` waits for, if that is so.
fn early_table(
    entry: &TocEntry,
    post: &HashSet<u32>,
    table_entries: &HashSet<u32>,
    table_of: &HashMap<u32, usize>,
) -> Option<usize> {
    let kind_ok = (entry.rest.starts_with("INDEX ") && !entry.rest.starts_with("INDEX ATTACH "))
        || entry.rest.starts_with("CONSTRAINT ");
    if !kind_ok {
        return None;
    }
    let mut table = None;
    for dep in &entry.deps {
        if post.contains(dep) {
            return None; // waits for another post-data entry
        }
        if table_entries.contains(dep) {
            let t = *table_of.get(dep)?;
            if table.is_some_and(|seen| seen != t) {
                return None;
            }
            table = Some(t);
        }
    }
    table
}

/// A `-L` list file of `entries`.
pub(crate) fn list_file(entries: &[TocEntry]) -> String {
    entries.iter().map(|e| format!("{}\n", e.line)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pg_restore -l -v` of a schema-only archive of PostgreSQL 15: two tables with keys, an index and a
    /// partial expression index, a foreign key, a view, a materialized view with a unique index, a
    /// partitioned table with a key and one partition, a trigger and a NOT VALID check constraint.
    const LISTING: &str = "\
;
; Archive created at 2026-12-07 01:58:10 UTC
;     dbname: toc_probe
;
; Selected TOC Entries:
;
3383; 0 0 ENCODING - ENCODING 
3386; 1262 17249 DATABASE - toc_probe postgres
220; 1255 17290 FUNCTION public trg() postgres
214; 1259 17250 TABLE public a postgres
215; 1259 17257 TABLE public b postgres
217; 1259 17275 MATERIALIZED VIEW public mb postgres
;\tdepends on: 215
218; 1259 17280 TABLE public p postgres
219; 1259 17285 TABLE public p1 postgres
;\tdepends on: 218
216; 1259 17271 VIEW public vb postgres
;\tdepends on: 215 215 215
3217; 0 0 TABLE ATTACH public p1 postgres
;\tdepends on: 219 218
3220; 2606 17256 CONSTRAINT public a a_pkey postgres
;\tdepends on: 214
3218; 2606 17292 CHECK CONSTRAINT public a a_v_check postgres
;\tdepends on: 214 214
3223; 2606 17263 CONSTRAINT public b b_pkey postgres
;\tdepends on: 215
3227; 2606 17284 CONSTRAINT public p p_pkey postgres
;\tdepends on: 218 218
3229; 2606 17289 CONSTRAINT public p1 p1_pkey postgres
;\tdepends on: 219 219 3227 219
3221; 1259 17270 INDEX public b_expr postgres
;\tdepends on: 215 215 215 220
3224; 1259 17269 INDEX public b_w postgres
;\tdepends on: 215
3225; 1259 17279 INDEX public mb_u postgres
;\tdepends on: 217
3230; 0 0 INDEX ATTACH public p1_pkey postgres
;\tdepends on: 219 3227 3229 3227 219 218
3232; 2620 17291 TRIGGER public a t postgres
;\tdepends on: 220 214
3231; 2606 17264 FK CONSTRAINT public b b_a_id_fkey postgres
;\tdepends on: 3220 214 215
3379; 0 17275 MATERIALIZED VIEW DATA public mb postgres
;\tdepends on: 217
";
    const POST: [u32; 12] = [3220, 3218, 3223, 3227, 3229, 3221, 3224, 3225, 3230, 3232, 3231, 3379];

    /// Plans `LISTING` for `tables` (all eligible unless named in `small`); the early entries' ids per
    /// table and the rest's ids.
    fn check(tables: &[(&str, &str)], small: &[&str], expected_early: &[&[u32]], expected_rest: &[u32]) {
        let all = parse_listing(LISTING);
        let eligible: Vec<bool> = tables.iter().map(|(_, n)| !small.contains(n)).collect();
        let plan = plan(&all, &POST.into_iter().collect(), tables, &eligible);
        let ids = |entries: &[TocEntry]| entries.iter().map(|e| e.id).collect::<Vec<_>>();
        let early: Vec<Vec<u32>> = plan.early.iter().map(|e| ids(e)).collect();
        assert_eq!(early, expected_early.iter().map(|e| e.to_vec()).collect::<Vec<_>>());
        assert_eq!(ids(&plan.rest), expected_rest);
    }

    #[test]
    fn parses_entries_and_their_dependencies() {
        let all = parse_listing(LISTING);
        assert_eq!(all.len(), 22);
        let fk = all.iter().find(|e| e.id == 3231).unwrap();
        assert_eq!(fk.deps, [3220, 214, 215]);
        assert_eq!(fk.line, "3231; 2606 17264 FK CONSTRAINT public b b_a_id_fkey postgres");
        assert!(all.iter().find(|e| e.id == 214).unwrap().deps.is_empty());
    }

    #[test]
    fn keys_and_indexes_of_loaded_tables_go_early_the_rest_waits() {
        check(
            &[("public", "a"), ("public", "b"), ("public", "p1")],
            &[],
            // a: its key (not the NOT VALID check); b: key and both indexes; p1: its key hangs off p's.
            &[&[3220], &[3223, 3221, 3224], &[]],
            &[3218, 3227, 3229, 3225, 3230, 3232, 3231, 3379],
        );
    }

    #[test]
    fn small_tables_wait_for_the_one_post_data_run() {
        check(
            &[("public", "a"), ("public", "b"), ("public", "p1")],
            &["a"],
            &[&[], &[3223, 3221, 3224], &[]],
            &[3220, 3218, 3227, 3229, 3225, 3230, 3232, 3231, 3379],
        );
    }

    #[test]
    fn a_table_the_backup_does_not_hold_keeps_its_entries_for_later() {
        check(
            &[("public", "b")],
            &[],
            &[&[3223, 3221, 3224]],
            &[3220, 3218, 3227, 3229, 3225, 3230, 3232, 3231, 3379],
        );
    }

    #[test]
    fn names_that_cannot_be_told_apart_are_never_early() {
        // "public a b" could be table "a b" in "public" or table "b" in schema "public a".
        let listing = "10; 1259 1 TABLE public a b postgres\n11; 2606 2 CONSTRAINT public a b k postgres\n;\tdepends on: 10\n";
        let all = parse_listing(listing);
        let post: HashSet<u32> = [11].into_iter().collect();
        let p = plan(&all, &post, &[("public", "a b"), ("public a", "b")], &[true, true]);
        assert!(!p.has_early(), "{p:?}");
        assert_eq!(p.rest.len(), 1);
        let p = plan(&all, &post, &[("public", "a b")], &[true]);
        assert_eq!(p.early, [vec![all[1].clone()]]);
    }

    #[test]
    fn the_list_file_holds_the_lines() {
        let all = parse_listing(LISTING);
        let text = list_file(&all[2..4]);
        assert_eq!(
            text,
            "220; 1255 17290 FUNCTION public trg() postgres\n214; 1259 17250 TABLE public a postgres\n"
        );
    }
}
