//! `cargo xtask dist`: release archives of the binary with completions, man pages, README and licenses;
//! SHA256SUMS; a CycloneDX SBOM; a reproducibility check.
//!
//! Everything lands in `dist/` under the cargo target directory (`$CARGO_TARGET_DIR` when set):
//! `prodready-VERSION-TARGET.tar.gz` per target, `prodready.cdx.json`, `SHA256SUMS`.
//!
//! Reproducibility: the release build runs with `--remap-path-prefix` for the clone, cargo's home and the
//! build directories (panic locations and debug paths then name no machine), `SOURCE_DATE_EPOCH` from the
//! last commit, `CARGO_INCREMENTAL=0` and the release profile's fixed `codegen-units` (rustc's partitioning
//! is deterministic for a given count; it is the count that must not vary with the machine). The archives
//! are written by GNU tar with sorted names, owner 0, mtime `SOURCE_DATE_EPOCH`, and gzip without a name or
//! time. The check rebuilds from scratch in a second directory and compares the binaries; when they differ
//! it names the ELF sections that differ. Measured on 2026-12-06: they differ in 3 bytes of `.rodata`, in
//! promql-parser's parser tables, which its build script (grmtools) generates in a different order from
//! one build to the next; ThinLTO's `.llvm.HASH` suffixes of that module's symbols (`.strtab`, `.symtab`)
//! and the build id follow. Our own code and every path are the same in both builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::json::{self, Json};
use crate::{Result, cargo, root, run, say};

pub(crate) const HELP: &str = "\
usage: cargo xtask dist [--target TRIPLE]... [--no-repro]

Release build of `prodready`, then in dist/ under the cargo target directory:
  prodready-VERSION-TRIPLE.tar.gz   the binary, completions (bash, zsh, fish, elvish, PowerShell),
                                    man pages, README.md, LICENSE-MIT, LICENSE-APACHE
  prodready.cdx.json                CycloneDX 1.5 SBOM: every crate linked into the binary (the normal
                                    dependencies of its resolved graph for each target) with version,
                                    license, purl and the Cargo.lock checksum
  SHA256SUMS                        check with `cd dist && sha256sum -c SHA256SUMS`
A second build from scratch in another directory is compared with the first: the same sha256, or a
warning naming the ELF sections that differ; --no-repro skips it.

  --target TRIPLE   build for TRIPLE (repeatable; default: the host). Its standard library must be
                    installed (`rustup target add TRIPLE`)
  --no-repro        skip the reproducibility build

Examples:
  cargo xtask dist
  cargo xtask dist --no-repro
  cargo xtask dist --target x86_64-unknown-linux-gnu";

pub(crate) fn main(args: &[String]) -> Result {
    let mut targets = Vec::new();
    let mut repro = true;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target" => targets.push(args.next().ok_or("--target needs a triple")?.clone()),
            "--no-repro" => repro = false,
            "-h" | "--help" => {
                say(HELP);
                return Ok(());
            }
            other => return Err(format!("unexpected argument `{other}`\n\n{HELP}")),
        }
    }
    let host = host()?;
    if targets.is_empty() {
        targets.push(host.clone());
    }
    let target_dir = crate::target_dir();
    let dist = target_dir.join("dist");
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    let epoch = source_date_epoch()?;
    let version = workspace_version()?;
    let builds = [target_dir.join("dist-build"), target_dir.join("dist-repro")];
    let flags = (rustflags(&builds), cflags(&builds));

    // Completions and man pages come from a binary that runs here: the host's.
    let mut host_bin = None;
    let mut binaries = Vec::new();
    for target in &targets {
        let bin = build(&builds[0], target, &flags, epoch)?;
        if *target == host {
            host_bin = Some(bin.clone());
        }
        binaries.push((target.clone(), bin));
    }
    let host_bin = match host_bin {
        Some(bin) => bin,
        None => build(&builds[0], &host, &flags, epoch)?,
    };
    let mut files = Vec::new();
    for (target, bin) in &binaries {
        let name = format!("prodready-{version}-{target}");
        package(&name, bin, &host_bin, &dist, epoch)?;
        files.push(format!("{name}.tar.gz"));
    }
    let sbom = sbom(&targets, epoch)?;
    std::fs::write(dist.join("prodready.cdx.json"), sbom).map_err(|e| e.to_string())?;
    files.push("prodready.cdx.json".to_owned());
    write_sums(&dist, &files)?;
    say(&format!("dist: {} ({})", dist.display(), files.join(", ")));

    if repro {
        for (target, bin) in &binaries {
            let _ = std::fs::remove_dir_all(&builds[1]);
            let again = build(&builds[1], target, &flags, epoch)?;
            // A difference is named, not fatal: the archives and sums of the first build stand, and the
            // cause is usually a dependency's build script (see the module docs).
            match compare(bin, &again) {
                Ok(()) => say(&format!("reproducible: {target} builds twice to sha256 {}", sha256(bin)?)),
                Err(differences) => say(&format!("warning: {differences}")),
            }
        }
        let _ = std::fs::remove_dir_all(&builds[1]);
    }
    Ok(())
}

fn host() -> Result<String> {
    let out = Command::new("rustc").arg("-vV").output().map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// `SOURCE_DATE_EPOCH` when set, else the last commit's time: the same sources give the same archives.
fn source_date_epoch() -> Result<u64> {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH").ok().filter(|v| !v.is_empty()) {
        return epoch
            .trim()
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={epoch} is not a number of seconds"));
    }
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "no commit to take SOURCE_DATE_EPOCH from: set SOURCE_DATE_EPOCH".to_owned())
}

/// `[workspace.package] version` from the root Cargo.toml.
pub(crate) fn workspace_version() -> Result<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).map_err(|e| e.to_string())?;
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[workspace.package]";
        } else if in_package && let Some(value) = line.strip_prefix("version") {
            return Ok(value.trim_start().trim_start_matches('=').trim().trim_matches('"').to_owned());
        }
    }
    Err("Cargo.toml: no version in [workspace.package]".to_owned())
}

/// Path prefixes that differ between machines, each mapped to a fixed name: `--remap-path-prefix` for
/// rustc, `-ffile-prefix-map` for the C compilers of build scripts (aws-lc-sys, zstd-sys: `__FILE__` in
/// their assertions). The same strings for both builds, so the flags themselves cannot make them differ.
fn rustflags(builds: &[PathBuf]) -> String {
    prefix_map(builds, "--remap-path-prefix")
}

fn cflags(builds: &[PathBuf]) -> String {
    prefix_map(builds, "-ffile-prefix-map")
}

fn prefix_map(builds: &[PathBuf], flag: &str) -> String {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    let mut flags =
        vec![format!("{flag}={}=/cargo", home.display()), format!("{flag}={}=/prodready", root().display())];
    for dir in builds {
        flags.push(format!("{flag}={}=/build", dir.display()));
    }
    flags.join(" ")
}

/// A release build of the binary into `dir` (its own target directory), returning the binary.
fn build(dir: &Path, target: &str, flags: &(String, String), epoch: u64) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--package",
        "prodready",
        "--bin",
        "prodready",
        "--target",
        target,
    ])
    .env("CARGO_TARGET_DIR", dir)
    .env("RUSTFLAGS", &flags.0)
    .env("CFLAGS", &flags.1)
    .env("CXXFLAGS", &flags.1)
    .env("SOURCE_DATE_EPOCH", epoch.to_string())
    .env("CARGO_INCREMENTAL", "0")
    .env_remove("RUSTC_WRAPPER")
    .env_remove("CARGO_BUILD_RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run(&mut cmd)?;
    let bin = dir.join(target).join("release/prodready");
    if bin.is_file() { Ok(bin) } else { Err(format!("the build wrote no {}", bin.display())) }
}

/// `dist/NAME.tar.gz` holding `NAME/` with the binary, completions, man pages, README and licenses.
/// `host_bin` is run to write the completions and man pages.
pub(crate) fn package(name: &str, bin: &Path, host_bin: &Path, dist: &Path, epoch: u64) -> Result {
    let stage = dist.join(format!(".stage-{name}"));
    let _ = std::fs::remove_dir_all(&stage);
    let top = stage.join(name);
    for sub in ["completions", "man"] {
        std::fs::create_dir_all(top.join(sub)).map_err(|e| e.to_string())?;
    }
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to).map(drop).map_err(|e| format!("cannot copy {}: {e}", from.display()))
    };
    copy(bin, &top.join("prodready"))?;
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        copy(&root().join(file), &top.join(file))?;
    }
    for (shell, file) in [
        ("bash", "prodready.bash"),
        ("zsh", "_prodready"),
        ("fish", "prodready.fish"),
        ("elvish", "prodready.elv"),
        ("powershell", "_prodready.ps1"),
    ] {
        let out = Command::new(host_bin)
            .args(["completions", shell])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", host_bin.display()))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(format!(
                "`prodready completions {shell}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::write(top.join("completions").join(file), out.stdout).map_err(|e| e.to_string())?;
    }
    let status = Command::new(host_bin)
        .args(["man", "--out"])
        .arg(top.join("man"))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", host_bin.display()))?;
    if !status.success() {
        return Err(format!("`prodready man` failed ({status})"));
    }
    let archive = dist.join(format!("{name}.tar.gz"));
    let tar = format!(
        "tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w --mtime=@{epoch} \
         --format=gnu -C \"$1\" -cf - \"$2\" | gzip -9 -n > \"$3\""
    );
    run(Command::new("bash")
        .args(["-eu", "-o", "pipefail", "-c", &tar, "bash"])
        .arg(&stage)
        .arg(name)
        .arg(&archive))?;
    std::fs::remove_dir_all(&stage).map_err(|e| e.to_string())
}

/// `SHA256SUMS` in `dist`, in `sha256sum`'s own format, so `sha256sum -c SHA256SUMS` checks it there.
pub(crate) fn write_sums(dist: &Path, files: &[String]) -> Result {
    let out = Command::new("sha256sum")
        .args(files)
        .current_dir(dist)
        .output()
        .map_err(|e| format!("cannot run sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!("sha256sum failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    std::fs::write(dist.join("SHA256SUMS"), out.stdout).map_err(|e| e.to_string())
}

fn sha256(file: &Path) -> Result<String> {
    let out =
        Command::new("sha256sum").arg(file).output().map_err(|e| format!("cannot run sha256sum: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned())
}

/// Ok when the two binaries are the same bytes; otherwise an error naming the ELF sections that differ.
fn compare(a: &Path, b: &Path) -> Result {
    let (x, y) = (std::fs::read(a).map_err(|e| e.to_string())?, std::fs::read(b).map_err(|e| e.to_string())?);
    if x == y {
        return Ok(());
    }
    let (sx, sy) = (sections(&x), sections(&y));
    let mut differ = Vec::new();
    for (name, data) in &sx {
        match sy.get(name) {
            Some(other) if other == data => {}
            Some(other) => differ.push(format!("{name} ({} vs {} bytes)", data.len(), other.len())),
            None => differ.push(format!("{name} (only in the first)")),
        }
    }
    differ.extend(sy.keys().filter(|n| !sx.contains_key(*n)).map(|n| format!("{n} (only in the second)")));
    Err(format!(
        "not reproducible: {} and {} differ ({} vs {} bytes); sections that differ: {}",
        a.display(),
        b.display(),
        x.len(),
        y.len(),
        if differ.is_empty() { "none (headers only)".to_owned() } else { differ.join(", ") }
    ))
}

/// Section name -> contents of a 64-bit little-endian ELF file (empty when it is not one).
fn sections(elf: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let u16_at = |o: usize| elf.get(o..o + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    };
    let u32_at =
        |o: usize| elf.get(o..o + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return out;
    }
    let (shoff, shentsize, shnum, shstrndx) = (u64_at(0x28), u16_at(0x3A), u16_at(0x3C), u16_at(0x3E));
    let header = |i: usize| shoff + i * shentsize;
    let names_at = u64_at(header(shstrndx) + 0x18);
    for i in 0..shnum {
        let h = header(i);
        let name_off = names_at + u32_at(h);
        let name = elf.get(name_off..).map_or("", |rest| {
            std::str::from_utf8(&rest[..rest.iter().position(|b| *b == 0).unwrap_or(0)]).unwrap_or("?")
        });
        let (kind, offset, size) = (u32_at(h + 4), u64_at(h + 0x18), u64_at(h + 0x20));
        // SHT_NOBITS (.bss) has no bytes in the file.
        let data =
            if kind == 8 { Vec::new() } else { elf.get(offset..offset + size).unwrap_or_default().to_vec() };
        out.insert(if name.is_empty() { format!("#{i}") } else { name.to_owned() }, data);
    }
    out
}

/// The crates the binary for `target` is built from: `cargo tree -e normal` for the package alone (what it
/// links, and the proc-macros that write part of its code; no dev- or build-only crate), which
/// resolves features as `cargo build -p prodready` does (`cargo metadata` unifies the features of the whole
/// workspace and would add crates only other members pull in). Each as `(name, version)`.
pub(crate) fn binary_graph(target: &str) -> Result<BTreeSet<(String, String)>> {
    let out = cargo()
        .args(["tree", "--locked", "--edges", "normal", "--package", "prodready", "--target", target])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo tree failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let mut set = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        if let (Some(name), Some(version)) = (words.next(), words.next()) {
            set.insert((name.to_owned(), version.trim_start_matches('v').to_owned()));
        }
    }
    Ok(set)
}

/// The CycloneDX 1.5 document for the binary on `targets`: the crates of `binary_graph` described from
/// `cargo metadata` (license, description, source, dependencies) and Cargo.lock (checksums).
pub(crate) fn sbom(targets: &[String], epoch: u64) -> Result<String> {
    let mut graph = BTreeSet::new();
    for target in targets {
        graph.extend(binary_graph(target)?);
    }
    let mut cmd = cargo();
    cmd.args(["metadata", "--format-version", "1", "--locked"]);
    for target in targets {
        cmd.args(["--filter-platform", target]);
    }
    let out = cmd.output().map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let meta = json::parse(&String::from_utf8_lossy(&out.stdout))?;
    let checksums = lock_checksums()?;

    // id -> (name, version) for the packages in the binary's graph.
    let mut ids = BTreeMap::new();
    let mut components = Vec::new();
    let purl = |name: &str, version: &str| format!("pkg:cargo/{name}@{version}");
    let mut root_ref = None;
    for package in meta.arr("packages") {
        let (Some(name), Some(version), Some(id)) =
            (package.str("name"), package.str("version"), package.str("id"))
        else {
            continue;
        };
        if !graph.contains(&(name.to_owned(), version.to_owned())) {
            continue;
        }
        ids.insert(id.to_owned(), purl(name, version));
        let mut fields = vec![
            (
                "type".to_owned(),
                Json::Str(if name == "prodready" { "application" } else { "library" }.to_owned()),
            ),
            ("bom-ref".to_owned(), Json::Str(purl(name, version))),
            ("name".to_owned(), Json::Str(name.to_owned())),
            ("version".to_owned(), Json::Str(version.to_owned())),
        ];
        if let Some(description) = package.str("description") {
            fields.push((
                "description".to_owned(),
                Json::Str(description.split_whitespace().collect::<Vec<_>>().join(" ")),
            ));
        }
        let license = match (package.str("license"), package.str("license_file")) {
            (Some(expression), _) => {
                Json::Obj(vec![("expression".to_owned(), Json::Str(expression.to_owned()))])
            }
            (None, Some(file)) => Json::Obj(vec![(
                "license".to_owned(),
                Json::Obj(vec![(
                    "name".to_owned(),
                    Json::Str(format!(
                        "LicenseRef-file: {}",
                        Path::new(file).file_name().unwrap_or_default().to_string_lossy()
                    )),
                )]),
            )]),
            (None, None) => return Err(format!("{name} {version} declares no license")),
        };
        fields.push(("licenses".to_owned(), Json::Arr(vec![license])));
        fields.push(("purl".to_owned(), Json::Str(purl(name, version))));
        if let Some(sum) = checksums.get(&(name.to_owned(), version.to_owned())) {
            fields.push((
                "hashes".to_owned(),
                Json::Arr(vec![Json::Obj(vec![
                    ("alg".to_owned(), Json::Str("SHA-256".to_owned())),
                    ("content".to_owned(), Json::Str(sum.clone())),
                ])]),
            ));
        }
        if let Some(repository) = package.str("repository") {
            fields.push((
                "externalReferences".to_owned(),
                Json::Arr(vec![Json::Obj(vec![
                    ("type".to_owned(), Json::Str("vcs".to_owned())),
                    ("url".to_owned(), Json::Str(repository.to_owned())),
                ])]),
            ));
        }
        if name == "prodready" {
            root_ref = Some(Json::Obj(fields));
        } else {
            components.push((purl(name, version), Json::Obj(fields)));
        }
    }
    let root = root_ref.ok_or("cargo metadata lists no prodready package")?;
    components.sort_by(|a, b| a.0.cmp(&b.0));
    let found: BTreeSet<_> = ids.values().cloned().collect();
    if let Some((name, version)) = graph.iter().find(|(n, v)| !found.contains(&purl(n, v))) {
        return Err(format!("cargo metadata does not describe {name} {version}, which cargo tree lists"));
    }

    // Dependencies: the normal edges between crates of the graph.
    let mut dependencies = BTreeMap::<String, BTreeSet<String>>::new();
    for node in meta.get("resolve").map_or(&[][..], |r| r.arr("nodes")) {
        let Some(from) = node.str("id").and_then(|id| ids.get(id)) else { continue };
        let entry = dependencies.entry(from.clone()).or_default();
        for dep in node.arr("deps") {
            let normal =
                dep.arr("dep_kinds").iter().any(|k| matches!(k.get("kind"), Some(Json::Null) | None));
            if let (true, Some(to)) = (normal, dep.str("pkg").and_then(|id| ids.get(id))) {
                entry.insert(to.clone());
            }
        }
    }
    let dependencies = dependencies
        .into_iter()
        .map(|(from, to)| {
            Json::Obj(vec![
                ("ref".to_owned(), Json::Str(from)),
                ("dependsOn".to_owned(), Json::Arr(to.into_iter().map(Json::Str).collect())),
            ])
        })
        .collect();

    let doc = Json::Obj(vec![
        ("bomFormat".to_owned(), Json::Str("CycloneDX".to_owned())),
        ("specVersion".to_owned(), Json::Str("1.5".to_owned())),
        ("version".to_owned(), Json::Num("1".to_owned())),
        (
            "metadata".to_owned(),
            Json::Obj(vec![
                ("timestamp".to_owned(), Json::Str(rfc3339(epoch))),
                (
                    "tools".to_owned(),
                    Json::Obj(vec![(
                        "components".to_owned(),
                        Json::Arr(vec![Json::Obj(vec![
                            ("type".to_owned(), Json::Str("application".to_owned())),
                            ("name".to_owned(), Json::Str("cargo xtask dist".to_owned())),
                        ])]),
                    )]),
                ),
                ("component".to_owned(), root),
                (
                    "properties".to_owned(),
                    Json::Arr(
                        targets
                            .iter()
                            .map(|t| {
                                Json::Obj(vec![
                                    ("name".to_owned(), Json::Str("cdx:rust:target".to_owned())),
                                    ("value".to_owned(), Json::Str(t.clone())),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ]),
        ),
        ("components".to_owned(), Json::Arr(components.into_iter().map(|(_, c)| c).collect())),
        ("dependencies".to_owned(), Json::Arr(dependencies)),
    ]);
    Ok(json::render(&doc))
}

/// (name, version) -> checksum, from Cargo.lock's `[[package]]` entries.
fn lock_checksums() -> Result<BTreeMap<(String, String), String>> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut out = BTreeMap::new();
    for entry in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            entry.lines().find_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        if let (Some(name), Some(version), Some(sum)) = (field("name"), field("version"), field("checksum")) {
            out.insert((name, version), sum);
        }
    }
    Ok(out)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (the civil-from-days algorithm).
fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_565_723), "2026-12-06T14:02:03Z");
    }

    /// The SBOM lists every crate `cargo tree -e normal` shows for the binary, each with its version,
    /// license and purl, and nothing the binary is not built from (dev-only crates, other members'
    /// features). Checked against the graph and, independently of it, against crates the binary is known
    /// to link and crates it is known not to.
    #[test]
    fn sbom_lists_the_binarys_graph_with_versions_and_licenses() {
        let target = host().unwrap();
        let doc = json::parse(&sbom(std::slice::from_ref(&target), 0).unwrap()).unwrap();
        assert_eq!(doc.str("bomFormat"), Some("CycloneDX"));
        let root = doc.get("metadata").and_then(|m| m.get("component")).unwrap();
        assert_eq!(root.str("name"), Some("prodready"));
        let mut listed = BTreeSet::new();
        for c in doc.arr("components") {
            let (name, version) = (c.str("name").unwrap(), c.str("version").unwrap());
            assert_eq!(c.str("purl"), Some(format!("pkg:cargo/{name}@{version}").as_str()));
            let license =
                c.arr("licenses").first().unwrap_or_else(|| panic!("{name} {version} has no license"));
            assert!(
                license.str("expression").is_some_and(|e| !e.is_empty()) || license.get("license").is_some()
            );
            listed.insert((name.to_owned(), version.to_owned()));
        }
        listed.insert(("prodready".to_owned(), root.str("version").unwrap().to_owned()));
        let tree = binary_graph(&target).unwrap();
        assert!(tree.len() > 100, "cargo tree listed {} crates", tree.len());
        let missing: Vec<_> = tree.difference(&listed).collect();
        let extra: Vec<_> = listed.difference(&tree).collect();
        assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, not in the binary {extra:?}");
        // Dev-dependencies of the binary stay out; what it runs on is in.
        assert!(!listed.iter().any(|(n, _)| n == "expect-test" || n == "prodready-test-support"));
        for linked in
            ["tokio", "clap", "tokio-postgres", "zstd", "rustls", "prodready-backup", "prodready-secrets"]
        {
            assert!(listed.iter().any(|(n, _)| n == linked), "{linked} is not in the SBOM");
        }
        let serde = doc.arr("components").iter().find(|c| c.str("name") == Some("serde")).unwrap();
        assert_eq!(serde.arr("licenses")[0].str("expression"), Some("MIT OR Apache-2.0"));
        assert_eq!(serde.arr("hashes")[0].str("alg"), Some("SHA-256"));
    }

    /// Archives and the SBOM verify with `sha256sum -c` in the folder, and a changed byte is caught. The
    /// binary here is a stand-in script answering `completions` and `man` as prodready does.
    #[test]
    fn sums_verify_with_sha256sum_in_the_folder() {
        let tmp = TempDir::new("dist").unwrap();
        let bin = tmp.path().join("prodready");
        std::fs::write(
            &bin,
            "#!/bin/sh\ncase \"$1\" in\n  completions) echo \"complete for $2\" ;;\n  \
             man) mkdir -p \"$3\" && echo '.TH PRODREADY 1' > \"$3/prodready.1\" ;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dist = tmp.path().join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        package("prodready-0.1.0-test", &bin, &bin, &dist, 1_700_000_000).unwrap();
        std::fs::write(dist.join("prodready.cdx.json"), "{}\n").unwrap();
        let files = ["prodready-0.1.0-test.tar.gz".to_owned(), "prodready.cdx.json".to_owned()];
        write_sums(&dist, &files).unwrap();

        let check =
            || Command::new("sha256sum").args(["-c", "SHA256SUMS"]).current_dir(&dist).output().unwrap();
        let out = check();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "prodready-0.1.0-test.tar.gz: OK\nprodready.cdx.json: OK\n"
        );
        let listing = Command::new("tar")
            .args(["-tzvf", "prodready-0.1.0-test.tar.gz"])
            .current_dir(&dist)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        for file in [
            "prodready-0.1.0-test/prodready",
            "prodready-0.1.0-test/README.md",
            "prodready-0.1.0-test/LICENSE-MIT",
            "prodready-0.1.0-test/LICENSE-APACHE",
            "prodready-0.1.0-test/completions/prodready.bash",
            "prodready-0.1.0-test/completions/_prodready",
            "prodready-0.1.0-test/man/prodready.1",
        ] {
            assert!(listing.lines().any(|l| l.ends_with(file)), "{file} not in\n{listing}");
        }
        assert!(listing.lines().all(|l| l.contains("0/0") && l.contains("2023-11-14")), "{listing}");

        // The same inputs give the same archive.
        let first = std::fs::read(dist.join("prodready-0.1.0-test.tar.gz")).unwrap();
        package("prodready-0.1.0-test", &bin, &bin, &dist, 1_700_000_000).unwrap();
        assert_eq!(first, std::fs::read(dist.join("prodready-0.1.0-test.tar.gz")).unwrap());

        std::fs::write(dist.join("prodready.cdx.json"), "{ }\n").unwrap();
        let out = check();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("prodready.cdx.json: FAILED"));
    }

    #[test]
    fn differing_sections_are_named() {
        let tmp = TempDir::new("elf").unwrap();
        let me = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&me).unwrap();
        let names = sections(&bytes);
        assert!(names.contains_key(".text") && names.contains_key(".rodata"), "{:?}", names.keys());
        // Flip one byte inside .rodata.
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, &bytes).unwrap();
        let rodata = names[".rodata"].clone();
        let at =
            bytes.windows(rodata.len().min(64)).position(|w| w == &rodata[..rodata.len().min(64)]).unwrap();
        let mut changed = bytes.clone();
        changed[at] ^= 0xff;
        std::fs::write(&b, &changed).unwrap();
        assert!(compare(&a, &a).is_ok());
        let err = compare(&a, &b).unwrap_err();
        assert!(err.contains("sections that differ: .rodata ("), "{err}");
    }
}
