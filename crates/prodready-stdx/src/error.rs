//! Displaying errors.

/// An error and its causes on one line, `outer: cause: root`, skipping a cause whose text the line
/// already holds (many errors repeat their source in their own message). HTTP and database clients hide
/// the useful part ("connection refused") in a source, so show errors with this.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The innermost cause of an error.
pub fn root_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> &'a (dyn std::error::Error + 'static) {
    let mut root = err;
    while let Some(next) = root.source() {
        root = next;
    }
    root
}

#[cfg(test)]
mod tests {
    use std::fmt;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn check(err: &E, expected: &str) {
        assert_eq!(super::chain(err), expected);
    }

    #[test]
    fn causes_join_and_repeats_are_skipped() {
        check(&E("outer", None), "outer");
        check(&E("outer", Some(Box::new(E("inner", Some(Box::new(E("root", None))))))), "outer: inner: root");
        check(&E("cannot connect: refused", Some(Box::new(E("refused", None)))), "cannot connect: refused");
        check(&E("outer", Some(Box::new(E("", Some(Box::new(E("root", None))))))), "outer: root");
        let err = E("a", Some(Box::new(E("b", Some(Box::new(E("c", None)))))));
        assert_eq!(super::root_cause(&err).to_string(), "c");
    }
}
