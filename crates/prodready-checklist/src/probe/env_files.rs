//! `env_files`: no secret values sit in plain-text `.env` files. Finds `.env` and `.env.*` in a directory
//! and its subfolders, a few levels down (templates such as `.env.example`, `.env.sample` and
//! `.env.template` are skipped, and so are `.git`, `node_modules`, `target` and the like), parses them with the
//! secrets crate's `.env` parser, and fails when any key has a value. The evidence names files and keys,
//! never a value.

use std::path::Path;

use prodready_secrets::ExposeSecret as _;

use super::Finding;

const TEMPLATES: &[&str] = &[".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"];

/// How deep below the directory `.env` files are looked for (a service's own folder, `services/api/`...).
const MAX_DEPTH: usize = 4;

/// Folders that hold other people's files or build output, never a service's configuration.
const SKIPPED: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "vendor",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    "build",
    ".cache",
    ".terraform",
    ".next",
    ".nuxt",
    ".tox",
    ".gradle",
];

/// The `.env` files under `dir` (to [`MAX_DEPTH`] levels, templates and [`SKIPPED`] folders left out),
/// as paths relative to `dir`, sorted.
fn env_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0)];
    let mut first = true;
    while let Some((folder, depth)) = pending.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if first => return Err(e),
            Err(_) => continue, // an unreadable subfolder is not the checked directory's problem
        };
        first = false;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH && !SKIPPED.contains(&name.as_str()) {
                    pending.push((path, depth + 1));
                }
            } else if path.is_file()
                && (name == ".env" || name.starts_with(".env."))
                && !TEMPLATES.contains(&name.as_str())
            {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    Ok(found)
}

pub(super) fn probe(dir: &Path) -> Finding {
    let files = match env_files(dir) {
        Ok(files) => files,
        Err(_) => return Finding::error(format!("cannot read the directory {}", dir.display())),
    };
    let mut holding = Vec::new();
    for name in &files {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            holding.push(format!("{name} (unreadable)"));
            continue;
        };
        match prodready_secrets::parse_dotenv(&path.display().to_string(), &text) {
            Ok(parsed) => {
                let keys: Vec<&str> = parsed
                    .iter()
                    .filter(|e| !e.value.expose_secret().is_empty())
                    .map(|e| e.key.as_str())
                    .collect();
                if !keys.is_empty() {
                    let shown = if keys.len() > 4 {
                        format!("{}, ...", keys[..4].join(", "))
                    } else {
                        keys.join(", ")
                    };
                    let noun = if keys.len() == 1 { "value" } else { "values" };
                    holding.push(format!("{name} ({} {noun}: {shown})", keys.len()));
                }
            }
            // The parser's errors name the file and line, never a value.
            Err(e) => holding.push(format!("{name} (unparsable: {e})")),
        }
    }
    if holding.is_empty() {
        Finding::pass(format!("no .env file with values in {}", dir.display()))
    } else {
        Finding::fail(format!("plain-text secrets in {}: {}", dir.display(), holding.join("; ")))
    }
}
