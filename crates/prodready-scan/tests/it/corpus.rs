//! Recall and precision of the builtin rules over a generated, labelled corpus, per rule.

pub mod generate;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use prodready_scan::secrets::{self, NoProgress, Options, Ruleset};

#[derive(Default)]
struct Score {
    positives: u32,
    found: u32,
    reported: u32,
    false_positives: u32,
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 { 1.0 } else { f64::from(n) / f64::from(d) }
}

#[test]
fn recall_and_precision_per_rule() {
    let rules = Ruleset::builtin();
    let ids: Vec<String> = rules.rules().map(|r| r.id.clone()).collect();
    let samples = generate::corpus(&ids, 24, 40, 17);
    let dir = tempfile::tempdir().expect("tempdir");
    for s in &samples {
        crate::write_tree(dir.path(), &[(&s.path, &s.text)]);
    }
    let report = secrets::scan_paths(&rules, &[dir.path().to_owned()], &Options::default(), &NoProgress)
        .expect("scan");

    // every labelled secret line, and which rule labels it
    let labelled: HashSet<(String, u32)> =
        samples.iter().flat_map(|s| s.secrets.iter().map(|(l, _)| (s.path.clone(), *l))).collect();
    let found: HashSet<(String, u32, String)> =
        report.findings.iter().map(|f| (f.path.clone(), f.line, f.rule.clone())).collect();
    let mut scores: BTreeMap<String, Score> = ids.iter().map(|id| (id.clone(), Score::default())).collect();
    let mut found_any = 0u32;
    let mut total = 0u32;
    for s in &samples {
        for (line, rule) in &s.secrets {
            total += 1;
            let score = scores.get_mut(rule).expect("a builtin rule");
            score.positives += 1;
            if found.contains(&(s.path.clone(), *line, rule.clone())) {
                score.found += 1;
            } else {
                eprintln!("missed: {}:{line} {rule}", s.path);
            }
            if report.findings.iter().any(|f| f.path == s.path && f.line == *line) {
                found_any += 1;
            }
        }
    }
    let mut false_positives = Vec::new();
    for f in &report.findings {
        let score = scores.get_mut(&f.rule).expect("a builtin rule");
        score.reported += 1;
        if !labelled.contains(&(f.path.clone(), f.line)) {
            score.false_positives += 1;
            false_positives.push(format!("{}  {}  {}", f.place(), f.rule, f.excerpt));
        }
    }

    let mut table = String::from("rule                             positives  recall  reported  precision\n");
    let mut failing = Vec::new();
    for (id, s) in &scores {
        let recall = ratio(s.found, s.positives);
        let precision = ratio(s.reported - s.false_positives, s.reported);
        let _ = writeln!(
            table,
            "{id:<32} {:>9}  {recall:>6.3}  {:>8}  {precision:>9.3}",
            s.positives, s.reported
        );
        if recall < 0.95 || precision < 0.95 {
            failing.push(id.clone());
        }
    }
    let reported = u32::try_from(report.findings.len()).expect("small");
    let fp = u32::try_from(false_positives.len()).expect("small");
    let _ = writeln!(
        table,
        "overall: {total} secrets in {} files, recall {:.3} (any rule), precision {:.3} ({reported} reported, {fp} false)",
        samples.len(),
        ratio(found_any, total),
        ratio(reported - fp, reported)
    );
    eprintln!("{table}");
    for line in &false_positives {
        eprintln!("false positive: {line}");
    }
    expect_test::expect_file!["corpus/RESULTS.txt"].assert_eq(&table);
    assert!(failing.is_empty(), "rules below 0.95 recall or precision: {failing:?}\n{table}");
    assert!(ratio(found_any, total) >= 0.95 && ratio(reported - fp, reported) >= 0.95, "{table}");
}

/// Every builtin rule has a generator, and its own real-shaped secret is found by it in isolation.
#[test]
fn every_rule_finds_its_own_shape() {
    let rules = Ruleset::builtin();
    let mut rng = generate::Rng::new(5);
    for rule in rules.rules() {
        if rule.id == "private-key" {
            continue;
        }
        let secret = generate::secret(&mut rng, &rule.id);
        let line = match rule.id.as_str() {
            "aws-secret-access-key" => format!("aws_secret_access_key = {secret}"),
            "heroku-api-key" => format!("HEROKU_API_KEY={secret}"),
            "telegram-bot-token" => format!("TELEGRAM_BOT_TOKEN={secret}"),
            "twilio-api-key" => format!("twilio_key: {secret}"),
            "mailgun-api-key" => format!("MAILGUN_KEY={secret}"),
            "azure-storage-account-key" => format!("AccountName=x;AccountKey={secret};EndpointSuffix=x"),
            "database-url-password" => format!("url = \"postgres://app:{secret}@db/app\""),
            "generic-api-key" => format!("api_key = \"{secret}\""),
            "generic-unquoted-secret" => format!("SERVICE_TOKEN={secret}"),
            id if generate::NEEDS_NAME.contains(&id) => format!("{}={secret}", generate::key_name(id)),
            _ => format!("value: {secret}"),
        };
        let (found, _) = secrets::scan_bytes(&rules, "x.txt", line.as_bytes());
        assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), [rule.id.as_str()], "{line}");
        let f = &found[0];
        assert!(!f.excerpt.contains(&secret), "{} excerpt shows the secret: {}", rule.id, f.excerpt);
        assert!(f.excerpt.contains("****"), "{}", f.excerpt);
    }
}
