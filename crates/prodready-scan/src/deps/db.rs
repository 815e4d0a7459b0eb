//! An advisory database read from a directory: OSV JSON files and RustSec Markdown advisories,
//! found recursively (hidden directories such as `.git` skipped), in path order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Advisory, AffectedPackage, Ecosystem, osv, rustsec};
use crate::{Error, Result};

/// What [`Database::load`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseStats {
    /// OSV JSON files read.
    pub osv_files: usize,
    /// RustSec Markdown advisories read.
    pub rustsec_files: usize,
    /// Advisories kept (withdrawn and duplicate ids left out).
    pub advisories: usize,
    /// Withdrawn advisories, left out.
    pub withdrawn: usize,
    /// Advisories whose id was already read from another file (RustSec in both formats), left out.
    pub duplicates: usize,
    /// Other files (README.md, images, ...), not read.
    pub other_files: usize,
    /// Advisories kept per ecosystem.
    pub by_ecosystem: BTreeMap<String, usize>,
}

/// Advisories indexed by ecosystem and package name.
#[derive(Debug, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    index: HashMap<(Ecosystem, String), Vec<(usize, usize)>>,
    ids: HashSet<String>,
    stats: DatabaseStats,
}

impl Database {
    /// Reads every advisory under `dir`. Any file that does not parse fails the load with one
    /// error naming it (and the line and key when known); so does a directory with no advisory.
    pub fn load(dir: &Path) -> Result<Database> {
        Database::load_all(&[dir])
    }

    /// Reads several directories into one database (an id read twice is kept once); each
    /// directory must hold at least one advisory.
    pub fn load_all<P: AsRef<Path>>(dirs: &[P]) -> Result<Database> {
        let mut db = Database::default();
        for dir in dirs {
            db.read_dir(dir.as_ref())?;
        }
        Ok(db)
    }

    fn read_dir(&mut self, dir: &Path) -> Result<()> {
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        files.sort();
        let (before, withdrawn_before) =
            (self.stats.advisories + self.stats.duplicates, self.stats.withdrawn);
        for path in files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".json") {
                let text = read(&path)?;
                let parsed = osv::parse(&path, &text)?;
                self.stats.osv_files += 1;
                self.stats.withdrawn += parsed.withdrawn;
                for advisory in parsed.advisories {
                    self.add(advisory);
                }
            } else if rustsec::is_advisory_name(name) {
                let text = read(&path)?;
                // advisory-db keeps the toolchain's own advisories under rust/<component>/.
                let toolchain =
                    path.parent().and_then(Path::parent).and_then(Path::file_name) == Some("rust".as_ref());
                self.stats.rustsec_files += 1;
                match rustsec::parse(&path, &text, toolchain)? {
                    Some(advisory) => self.add(advisory),
                    None => self.stats.withdrawn += 1,
                }
            } else {
                self.stats.other_files += 1;
            }
        }
        if self.stats.advisories + self.stats.duplicates == before && self.stats.withdrawn == withdrawn_before
        {
            return Err(Error::Database {
                path: dir.to_owned(),
                message: "no advisory found (expected OSV *.json files or a RustSec advisory-db checkout)"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// Builds a database from advisories already in memory (tests, other sources).
    pub fn from_advisories(advisories: impl IntoIterator<Item = Advisory>) -> Database {
        let mut db = Database::default();
        for advisory in advisories {
            db.add(advisory);
        }
        db
    }

    fn add(&mut self, advisory: Advisory) {
        if !self.ids.insert(advisory.id.clone()) {
            self.stats.duplicates += 1;
            return;
        }
        let i = self.advisories.len();
        for (j, affected) in advisory.affected.iter().enumerate() {
            let key = (affected.ecosystem.clone(), affected.ecosystem.normalize_name(&affected.name));
            let entries = self.index.entry(key).or_default();
            if !entries.iter().any(|(a, _)| *a == i) {
                *self.stats.by_ecosystem.entry(affected.ecosystem.to_string()).or_default() += 1;
            }
            entries.push((i, j));
        }
        self.stats.advisories += 1;
        self.advisories.push(advisory);
    }

    /// Every advisory naming `name` in `ecosystem`, with the entry that names it.
    pub fn lookup(
        &self,
        ecosystem: &Ecosystem,
        name: &str,
    ) -> impl Iterator<Item = (&Advisory, &AffectedPackage)> {
        self.index
            .get(&(ecosystem.clone(), ecosystem.normalize_name(name)))
            .into_iter()
            .flatten()
            .map(|&(i, j)| (&self.advisories[i], &self.advisories[i].affected[j]))
    }

    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    pub fn stats(&self) -> &DatabaseStats {
        &self.stats
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read { path: dir.to_owned(), source })?;
        let path = entry.path();
        if entry.file_name().to_str().is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        let kind = entry.file_type().map_err(|source| Error::Read { path: path.clone(), source })?;
        // Follow symlinks to files and directories alike.
        let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
        if is_dir {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
