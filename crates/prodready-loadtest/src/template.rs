//! `{{ name }}` templates in URLs, header values and bodies, compiled once and rendered per iteration.

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Literal(String),
    /// A variable, by its index in the scenario file's variable table.
    Var(usize),
}

/// A compiled template: literal text and variable references.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` at `{{ name }}` references; `resolve` maps a name to its variable's index or says
    /// why the name is unknown.
    pub(crate) fn compile(
        text: &str,
        mut resolve: impl FnMut(&str) -> Result<usize, String>,
    ) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!("`{{{{` without a closing `}}}}` in `{text}`"));
            };
            let name = after[..close].trim();
            if name.is_empty() {
                return Err(format!("empty `{{{{ }}}}` in `{text}`: name a variable inside"));
            }
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
                return Err(format!(
                    "`{name}` is not a variable name (letters, digits, `_`, `-` and `.` only)"
                ));
            }
            parts.push(Part::Var(resolve(name)?));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The literal text and variable references, in order.
    pub(crate) fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text when the template has no variable.
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Literal(text)] => Some(text),
            _ => None,
        }
    }

    /// Renders with each variable's value for this iteration.
    pub(crate) fn render(&self, out: &mut String, mut value: impl FnMut(usize, &mut String)) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(index) => value(*index, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["page".to_owned(), "users.name".to_owned()]
    }

    fn compile(text: &str) -> Result<Template, String> {
        let names = names();
        Template::compile(text, |n| {
            names.iter().position(|k| k == n).ok_or_else(|| format!("unknown variable `{n}`"))
        })
    }

    fn render(text: &str) -> Result<String, String> {
        let t = compile(text)?;
        let mut out = String::new();
        t.render(&mut out, |i, out| out.push_str(["7", "ada"][i]));
        Ok(out)
    }

    #[test]
    fn renders_and_refuses() {
        assert_eq!(render("/items?page={{ page }}&u={{users.name}}").as_deref(), Ok("/items?page=7&u=ada"));
        assert_eq!(render("plain").as_deref(), Ok("plain"));
        assert_eq!(render("{{page}}{{page}}").as_deref(), Ok("77"));
        assert_eq!(render("/x?{{ nope }}"), Err("unknown variable `nope`".to_owned()));
        assert_eq!(render("/x?{{ page"), Err("`{{` without a closing `}}` in `/x?{{ page`".to_owned()));
        assert_eq!(render("{{ }}"), Err("empty `{{ }}` in `{{ }}`: name a variable inside".to_owned()));
        assert!(compile("a").unwrap().as_literal() == Some("a"));
        assert!(compile("{{page}}").unwrap().as_literal().is_none());
    }
}
