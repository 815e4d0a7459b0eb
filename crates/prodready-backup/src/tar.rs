//! The tar streams `pg_basebackup -Ft` writes (ustar: regular files, directories, symbolic links), read
//! as they flow: [`Parser`] is fed arbitrary chunks and reports each entry's header and data, so a base
//! backup can note its `backup_label` and `backup_manifest` on the way to the store, and a recovery can
//! unpack a data directory without a copy of the archive on disk.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

const BLOCK: usize = 512;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) link: String,
}

/// What the parser found in the bytes it was fed.
pub(crate) enum Event<'a> {
    Start(&'a Entry),
    Data(&'a [u8]),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data,
    Padding,
    /// Two zero blocks seen (or one: some writers stop there): the archive is over.
    Done,
}

/// A streaming tar parser.
#[derive(Debug)]
pub(crate) struct Parser {
    state: State,
    header: Vec<u8>,
    entry: Option<Entry>,
    remaining: u64,
    padding: u64,
    /// A GNU long name (`L` entry) for the next header.
    long_name: Option<Vec<u8>>,
    reading_long_name: bool,
}

impl Parser {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Header,
            header: Vec::with_capacity(BLOCK),
            entry: None,
            remaining: 0,
            padding: 0,
            long_name: None,
            reading_long_name: false,
        }
    }

    /// Whether the end-of-archive marker was seen.
    pub(crate) fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Parses `buf`, calling `on` for every header, piece of data and entry end in it.
    pub(crate) fn feed(
        &mut self,
        mut buf: &[u8],
        on: &mut dyn FnMut(Event<'_>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.state {
                State::Done => return Ok(()), // trailing zero blocks (tar pads to a record size)
                State::Header => {
                    let take = (BLOCK - self.header.len()).min(buf.len());
                    self.header.extend_from_slice(&buf[..take]);
                    buf = &buf[take..];
                    if self.header.len() < BLOCK {
                        continue;
                    }
                    let block = std::mem::take(&mut self.header);
                    if block.iter().all(|&b| b == 0) {
                        self.state = State::Done;
                        continue;
                    }
                    let (entry, gnu_long_name) = self.parse_header(&block)?;
                    self.remaining = entry.size;
                    self.padding = (BLOCK as u64 - entry.size % BLOCK as u64) % BLOCK as u64;
                    self.reading_long_name = gnu_long_name;
                    if gnu_long_name {
                        self.long_name = Some(Vec::new());
                    } else {
                        on(Event::Start(&entry))?;
                    }
                    self.entry = Some(entry);
                    self.after_data(on)?;
                }
                State::Data => {
                    let take = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(buf.len());
                    if self.reading_long_name {
                        self.long_name.get_or_insert_with(Vec::new).extend_from_slice(&buf[..take]);
                    } else {
                        on(Event::Data(&buf[..take]))?;
                    }
                    buf = &buf[take..];
                    self.remaining -= take as u64;
                    self.after_data(on)?;
                }
                State::Padding => {
                    let take = usize::try_from(self.padding).unwrap_or(usize::MAX).min(buf.len());
                    buf = &buf[take..];
                    self.padding -= take as u64;
                    if self.padding == 0 {
                        self.state = State::Header;
                    }
                }
            }
        }
        Ok(())
    }

    /// After a header or a piece of data: move on once the entry's data is complete.
    fn after_data(&mut self, on: &mut dyn FnMut(Event<'_>) -> std::io::Result<()>) -> std::io::Result<()> {
        if self.remaining > 0 {
            self.state = State::Data;
            return Ok(());
        }
        if !self.reading_long_name && self.entry.take().is_some() {
            on(Event::End)?;
        }
        self.reading_long_name = false;
        self.state = if self.padding > 0 { State::Padding } else { State::Header };
        Ok(())
    }

    fn parse_header(&mut self, block: &[u8]) -> std::io::Result<(Entry, bool)> {
        let stored: u32 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) })
            .sum();
        let checksum =
            octal(&block[148..156]).ok_or_else(|| invalid("a tar header's checksum is not a number"))?;
        if u64::from(stored) != checksum {
            return Err(invalid("a tar header's checksum does not match: the archive is damaged"));
        }
        let size = number(&block[124..136]).ok_or_else(|| invalid("a tar header's size is not a number"))?;
        let typeflag = block[156];
        if typeflag == b'L' {
            let entry = Entry { name: String::new(), kind: Kind::File, mode: 0, size, link: String::new() };
            return Ok((entry, true));
        }
        let name = match self.long_name.take() {
            Some(long) => text(&long),
            None => {
                let name = text(&block[0..100]);
                let prefix =
                    if &block[257..262] == b"ustar" { text(&block[345..500]) } else { String::new() };
                if prefix.is_empty() { name } else { format!("{prefix}/{name}") }
            }
        };
        let kind = match typeflag {
            b'0' | 0 | b'7' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            other => {
                return Err(invalid(&format!(
                    "tar entry `{name}` has type `{}`, which a base backup never holds",
                    char::from(other)
                )));
            }
        };
        let mode = u32::try_from(octal(&block[100..108]).unwrap_or(0o600) & 0o7777).unwrap_or(0o600);
        let size = if kind == Kind::File { size } else { 0 };
        Ok((Entry { name, kind, mode, size, link: text(&block[157..257]) }, false))
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

/// A NUL-terminated field.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// An octal field (spaces and NULs around it allowed).
fn octal(field: &[u8]) -> Option<u64> {
    let digits = text(field);
    let digits = digits.trim_matches(|c: char| c == ' ' || c == '\0');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// A size: octal, or base-256 (high bit of the first byte set) for files over 8 GiB.
fn number(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut value = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    octal(field)
}

/// Writes a tar stream's entries under a directory, refusing names that lead outside it. Files and
/// directories keep their modes; with `owner`, everything is handed to that (uid, gid).
pub(crate) struct Unpacker {
    root: PathBuf,
    owner: Option<(u32, u32)>,
    parser: Parser,
    file: Option<(std::io::BufWriter<std::fs::File>, PathBuf)>,
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

impl Unpacker {
    pub(crate) fn new(root: &Path, owner: Option<(u32, u32)>) -> Self {
        Self { root: root.to_owned(), owner, parser: Parser::new(), file: None, files: 0, bytes: 0 }
    }

    /// Whether the whole archive arrived.
    pub(crate) fn done(&self) -> bool {
        self.parser.done()
    }

    fn target(&self, name: &str) -> std::io::Result<PathBuf> {
        let rel = Path::new(name.trim_end_matches('/'));
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(invalid(&format!("tar entry `{name}` leads outside the data directory")));
        }
        Ok(self.root.join(rel))
    }

    fn chown(&self, path: &Path) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    fn on(&mut self, event: Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Start(entry) => {
                let path = self.target(&entry.name)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                match entry.kind {
                    Kind::Dir => {
                        match std::fs::create_dir(&path) {
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                            other => other?,
                        }
                        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode | 0o700))?;
                        self.chown(&path)?;
                    }
                    Kind::Symlink => {
                        std::os::unix::fs::symlink(&entry.link, &path)?;
                        self.chown(&path)?;
                    }
                    Kind::File => {
                        let file = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode_from(entry.mode)
                            .open(&path)?;
                        self.chown(&path)?;
                        self.files += 1;
                        self.file = Some((std::io::BufWriter::with_capacity(1 << 20, file), path));
                    }
                }
            }
            Event::Data(bytes) => {
                if let Some((file, _)) = &mut self.file {
                    file.write_all(bytes)?;
                    self.bytes += bytes.len() as u64;
                }
            }
            Event::End => {
                if let Some((file, _)) = self.file.take() {
                    file.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_data()?;
                }
            }
        }
        Ok(())
    }
}

impl std::io::Write for Unpacker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut parser = std::mem::replace(&mut self.parser, Parser::new());
        let fed = parser.feed(buf, &mut |event| self.on(event));
        self.parser = parser;
        fed?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

trait ModeFrom {
    fn mode_from(&mut self, mode: u32) -> &mut Self;
}

impl ModeFrom for std::fs::OpenOptions {
    fn mode_from(&mut self, mode: u32) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The owner can always read and write what it unpacked (PostgreSQL needs both).
        self.mode((mode & 0o777) | 0o600)
    }
}

/// Notes the named small files of a tar stream as it passes (at most `limit` bytes each).
pub(crate) struct Tap {
    parser: Parser,
    wanted: &'static [&'static str],
    limit: usize,
    current: Option<(String, Vec<u8>)>,
    pub(crate) found: Vec<(String, Vec<u8>)>,
    pub(crate) entries: u64,
    /// Every name in the archive that is not a directory, for the recovery's sanity checks.
    pub(crate) names: Vec<String>,
}

impl Tap {
    pub(crate) fn new(wanted: &'static [&'static str], limit: usize) -> Self {
        Self {
            parser: Parser::new(),
            wanted,
            limit,
            current: None,
            found: Vec::new(),
            entries: 0,
            names: Vec::new(),
        }
    }

    pub(crate) fn done(&self) -> bool {
        self.parser.done()
    }

    pub(crate) fn feed(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut parser = std::mem::replace(&mut self.parser, Parser::new());
        let (wanted, limit) = (self.wanted, self.limit);
        let (current, found, entries, names) =
            (&mut self.current, &mut self.found, &mut self.entries, &mut self.names);
        let fed = parser.feed(buf, &mut |event| {
            match event {
                Event::Start(entry) => {
                    *entries += 1;
                    if entry.kind == Kind::File {
                        names.push(entry.name.clone());
                    }
                    if entry.kind == Kind::File && wanted.contains(&entry.name.as_str()) {
                        *current = Some((entry.name.clone(), Vec::new()));
                    }
                }
                Event::Data(bytes) => {
                    if let Some((name, data)) = current.as_mut() {
                        if data.len() + bytes.len() > limit {
                            return Err(invalid(&format!(
                                "`{name}` in the archive is larger than {limit} bytes"
                            )));
                        }
                        data.extend_from_slice(bytes);
                    }
                }
                Event::End => {
                    if let Some(done) = current.take() {
                        found.push(done);
                    }
                }
            }
            Ok(())
        });
        self.parser = parser;
        fed
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const LABEL: &[u8] = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n";

    /// A ustar header for `name`.
    fn header(name: &str, typeflag: u8, size: u64, link: &str) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000600");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn archive() -> Vec<u8> {
        let mut tar = Vec::new();
        tar.extend(header("global/", b'5', 0, ""));
        tar.extend(header("backup_label", b'0', LABEL.len() as u64, ""));
        tar.extend_from_slice(LABEL);
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
        tar.extend(header("global/pg_control", b'0', 1000, ""));
        tar.extend(std::iter::repeat_n(7u8, 1000));
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
        tar.extend(header("pg_wal", b'2', 0, "/elsewhere"));
        tar.extend(vec![0u8; BLOCK * 2]);
        tar
    }

    #[test]
    fn a_tap_sees_the_label_whatever_the_chunking() {
        let tar = archive();
        for chunk in [1, 7, 511, 512, 513, 4096] {
            let mut tap = Tap::new(&["backup_label", "backup_manifest"], 1 << 20);
            for piece in tar.chunks(chunk) {
                tap.feed(piece).unwrap();
            }
            assert!(tap.done(), "chunk {chunk}");
            assert_eq!(tap.found.len(), 1, "chunk {chunk}");
            assert!(tap.found[0].1.starts_with(b"START WAL LOCATION"), "chunk {chunk}");
            assert_eq!(tap.names, ["backup_label", "global/pg_control"], "chunk {chunk}");
        }
    }

    #[test]
    fn an_unpacker_writes_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let mut unpacker = Unpacker::new(dir.path(), None);
        for piece in archive().chunks(100) {
            unpacker.write_all(piece).unwrap();
        }
        assert!(unpacker.done());
        assert_eq!(std::fs::read(dir.path().join("global/pg_control")).unwrap(), vec![7u8; 1000]);
        assert_eq!(std::fs::read_link(dir.path().join("pg_wal")).unwrap(), Path::new("/elsewhere"));
        assert_eq!((unpacker.files, unpacker.bytes), (2, 1000 + LABEL.len() as u64));
    }

    #[test]
    fn names_outside_the_directory_and_damaged_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut unpacker = Unpacker::new(dir.path(), None);
        let err = unpacker.write_all(&header("../escape", b'0', 0, "")).unwrap_err();
        assert!(err.to_string().contains("leads outside"), "{err}");
        let mut damaged = header("base/1", b'0', 0, "");
        damaged[0] = b'c';
        let err = Tap::new(&[], 10).feed(&damaged).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
