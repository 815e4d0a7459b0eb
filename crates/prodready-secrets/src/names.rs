//! The name transforms between secret names and environment variable names.
//!
//! - `exec` and [`load_env`](crate::load_env): strip the prefix, upper-case ASCII letters, and turn every
//!   other character that is not a letter or digit into `_`; a leading digit gets a `_` in front.
//!   `prod/app/database-url` with prefix `prod/app/` becomes `DATABASE_URL`.
//! - `migrate`: the reverse for a `.env` key: lower-case, `_` becomes `-`, the prefix goes in front.
//!   `DATABASE_URL` with prefix `prod/app/` becomes `prod/app/database-url`.

/// The environment variable a secret becomes under `exec`.
pub fn env_var_name(name: &str, prefix: &str) -> String {
    let rest = name.strip_prefix(prefix).unwrap_or(name);
    let mut var: String =
        rest.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if var.is_empty() || var.starts_with(|c: char| c.is_ascii_digit()) {
        var.insert(0, '_');
    }
    var
}

/// The secret a `.env` key becomes under `migrate`.
pub fn secret_name(key: &str, prefix: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + key.len());
    name.push_str(prefix);
    name.extend(key.chars().map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }));
    name
}
