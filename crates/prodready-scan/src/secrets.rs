//! Secrets in files and in git history: rules, keyword prefilter, entropy, allowlists, baseline.
