//! `env_files`: no secret values sit in plain-text `.env` files. Finds `.env` and `.env.*` in a directory
//! (templates such as `.env.example`, `.env.sample` and `.env.template` are skipped), parses them with the
//! secrets crate's `.env` parser, and fails when any key has a value. The evidence names files and keys,
//! never a value.

use std::path::Path;

use prodready_secrets::ExposeSecret as _;

use super::Finding;

const TEMPLATES: &[&str] = &[".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"];

pub(super) fn probe(dir: &Path) -> Finding {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Finding::error(format!("cannot read the directory {}", dir.display()));
    };
    let mut files: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| (name == ".env" || name.starts_with(".env.")) && !TEMPLATES.contains(&name.as_str()))
        .collect();
    files.sort();
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
