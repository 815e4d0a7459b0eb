//! A labelled secret corpus, generated: real-shaped fake credentials for every builtin rule in the
//! contexts they leak in (`.env`, YAML, JSON, Python, JavaScript, Terraform, shell, properties), and hard
//! negatives (UUIDs, hashes, example and placeholder keys, base64 images, minified JavaScript, lockfile
//! integrity hashes, public keys and certificates, code that reads secrets instead of holding them).
//!
//! Shared by the corpus test and `cargo run -p prodready-scan --example corpus -- DIR` (the benchmark's
//! copy for the peer scanners). Deterministic: the same seed gives the same files.

#![allow(unreachable_pub)]

use std::fmt::Write as _;

/// One file of the corpus, and the lines (1-based) of `rule`'s secrets in it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub path: String,
    pub text: String,
    /// (line, rule id) of each secret; empty for a negative.
    pub secrets: Vec<(u32, String)>,
}

/// splitmix64: small, deterministic, good enough for shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// `n` characters from `alphabet`.
    pub fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..n).map(|_| a[self.below(a.len())]).collect()
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() & 0xff) as u8).collect()
    }
}

pub const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
pub const DIGITS: &str = "0123456789";
pub const HEX: &str = "0123456789abcdef";
pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const BASE36: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

/// Random alphanumerics with at least one digit and both cases (what real tokens look like).
pub fn token(rng: &mut Rng, alphabet: &str, n: usize) -> String {
    loop {
        let t = rng.chars(alphabet, n);
        let digit = !alphabet.contains('0') || t.bytes().any(|b| b.is_ascii_digit());
        let upper = !alphabet.contains('A') || t.bytes().any(|b| b.is_ascii_uppercase());
        let lower = !alphabet.contains('a') || t.bytes().any(|b| b.is_ascii_lowercase());
        if digit && upper && lower {
            return t;
        }
    }
}

pub fn base64(bytes: &[u8], alphabet: &str, pad: bool) -> String {
    let a = alphabet.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(a[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

pub fn uuid(rng: &mut Rng) -> String {
    let h = rng.chars(HEX, 32);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// A GitLab routable token's tail after its prefix: base64url payload, `.01.`, base-36 length and CRC.
fn gitlab_routable(rng: &mut Rng) -> String {
    let n = rng.range(30, 60);
    format!("{}.01.{}", token(rng, B64URL, n), rng.chars(BASE36, 9))
}

/// The secret of `rule`, real-shaped.
pub fn secret(rng: &mut Rng, rule: &str) -> String {
    match rule {
        "aws-access-key-id" => {
            format!("{}{}", rng.pick(&["AKIA", "ASIA"]), token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16))
        }
        "aws-secret-access-key" => token(rng, B64, 40),
        "gcp-api-key" => format!("AIza{}", token(rng, &format!("{ALNUM}-_"), 35)),
        "azure-storage-account-key" => format!("{}==", token(rng, B64, 86)),
        "azure-ad-client-secret" => {
            format!("{}{}Q~{}", token(rng, ALNUM, 3), rng.below(10), token(rng, &format!("{ALNUM}_~.-"), 34))
        }
        "digitalocean-token" => format!("{}_v1_{}", rng.pick(&["dop", "doo", "dor"]), rng.chars(HEX, 64)),
        "heroku-api-key" => uuid(rng),
        "heroku-api-key-v2" => format!("HRKU-AA{}", token(rng, &format!("{ALNUM}_-"), 58)),
        "alibaba-access-key-id" => format!("LTAI{}", token(rng, ALNUM, 20)),
        "alibaba-secret-key" => token(rng, ALNUM, 30),
        "aws-bedrock-api-key-long-lived" => {
            let text = format!(
                "BedrockAPIKey-{}-at-{}:{}",
                token(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 4),
                rng.chars(DIGITS, 12),
                base64(&rng.bytes(42), B64, true)
            );
            format!("ABSK{}", base64(text.as_bytes(), B64, true))
        }
        "aws-bedrock-api-key-short-lived" => {
            let url = format!(
                "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA{}%2F2025{:02}{:02}%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Date=2025{:02}{:02}T{:02}{:02}{:02}Z&X-Amz-Expires=43200&X-Amz-Security-Token={}&X-Amz-Signature={}&X-Amz-SignedHeaders=host&Version=1",
                token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
                rng.range(1, 12),
                rng.range(1, 28),
                rng.range(1, 12),
                rng.range(1, 28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                token(rng, B64URL, 160),
                rng.chars(HEX, 64)
            );
            format!("bedrock-api-key-{}", base64(url.as_bytes(), B64, true))
        }
        "cloudflare-global-api-key" => rng.chars(HEX, 37),
        "cloudflare-api-token" => token(rng, &format!("{ALNUM}_-"), 40),
        "cloudflare-origin-ca-key" => format!("v1.0-{}-{}", rng.chars(HEX, 24), rng.chars(HEX, 146)),
        "flyio-access-token" => match rng.below(3) {
            0 => format!("fo1_{}", token(rng, &format!("{ALNUM}_-"), 43)),
            1 => {
                let n = rng.range(90, 200);
                format!("fm1r_lJPECAAAAAAAA{}", base64(&rng.bytes(n), B64, true))
            }
            _ => {
                let n = rng.range(120, 300);
                format!("fm2_lJPECAAAAAAAA{}", base64(&rng.bytes(n), B64, true))
            }
        },
        "yandex-api-key" => format!("AQVN{}", token(rng, &format!("{ALNUM}_-"), 36)),
        "yandex-aws-access-token" => format!("YC{}", token(rng, &format!("{ALNUM}_-"), 38)),
        "yandex-iam-token" => {
            let n = rng.range(60, 120);
            format!("t1.{}.{}", token(rng, B64URL, n), token(rng, B64URL, 86))
        }
        "databricks-token" => format!("dapi{}", rng.chars(HEX, 32)),
        "hashicorp-terraform-token" => format!("{}.atlasv1.{}", token(rng, ALNUM, 14), token(rng, ALNUM, 67)),
        "hashicorp-vault-token" => format!("hvs.{}", token(rng, ALNUM, 95)),
        "pulumi-token" => format!("pul-{}", rng.chars(HEX, 40)),
        "doppler-token" => format!("dp.{}.{}", rng.pick(&["pt", "st", "sa"]), token(rng, ALNUM, 43)),
        "confluent-access-token" => token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16),
        "confluent-secret-key" => token(rng, &format!("{ALNUM}+/"), 64),
        "npm-token" => format!("npm_{}", token(rng, ALNUM, 36)),
        "pypi-token" => format!("pypi-AgEIcHlwaS5vcmc{}", token(rng, ALNUM, 70)),
        "dockerhub-token" => format!("dckr_pat_{}", token(rng, ALNUM, 27)),
        "openai-api-key" => format!("sk-proj-{}T3BlbkFJ{}", token(rng, ALNUM, 40), token(rng, ALNUM, 40)),
        "anthropic-api-key" => format!("sk-ant-api03-{}AA", token(rng, ALNUM, 93)),
        "huggingface-token" => format!("hf_{}", token(rng, &format!("{UPPER}{LOWER}"), 34)),
        "github-pat" => format!("ghp_{}", token(rng, ALNUM, 36)),
        "github-fine-grained-pat" => {
            format!("github_pat_{}_{}", token(rng, ALNUM, 22), token(rng, ALNUM, 59))
        }
        "github-oauth-token" => format!("gho_{}", token(rng, ALNUM, 36)),
        "github-app-token" => format!("{}_{}", rng.pick(&["ghu", "ghs"]), token(rng, ALNUM, 36)),
        "github-refresh-token" => format!("ghr_{}", token(rng, ALNUM, 36)),
        "gitlab-pat" => match rng.below(3) {
            0 => format!("glpat-{}", gitlab_routable(rng)),
            _ => format!("glpat-{}", token(rng, ALNUM, 20)),
        },
        "gitlab-pipeline-trigger-token" => format!("glptt-{}", rng.chars(HEX, 40)),
        "gitlab-runner-token" => match rng.below(3) {
            0 => format!("glrt-t{}_{}", rng.range(1, 3), gitlab_routable(rng)),
            _ => format!("{}{}", rng.pick(&["glrt-", "GR1348941"]), token(rng, ALNUM, 20)),
        },
        "gitlab-deploy-token" => format!("gldt-{}", token(rng, ALNUM, 20)),
        "gitlab-feed-token" => format!("glft-{}", token(rng, ALNUM, 20)),
        "gitlab-cicd-job-token" => {
            let n = rng.range(1, 5);
            format!("glcbt-{}_{}", rng.chars(HEX, n), token(rng, ALNUM, 20))
        }
        "gitlab-oauth-app-secret" => format!("gloas-{}", token(rng, ALNUM, 64)),
        "gitlab-kubernetes-agent-token" => format!("glagent-{}", token(rng, &format!("{ALNUM}_-"), 50)),
        "gitlab-incoming-mail-token" => format!("glimt-{}", token(rng, ALNUM, 25)),
        "gitlab-scim-token" => format!("glsoat-{}", token(rng, ALNUM, 20)),
        "gitlab-feature-flag-client-token" => format!("glffct-{}", token(rng, ALNUM, 20)),
        "gitlab-session-cookie" => format!("_gitlab_session={}", rng.chars(HEX, 32)),
        "bitbucket-app-password" => format!("ATBB{}", token(rng, ALNUM, 32)),
        "bitbucket-client-id" => {
            let n = if rng.below(2) == 0 { 18 } else { 32 };
            token(rng, ALNUM, n)
        }
        "bitbucket-client-secret" => {
            let n = if rng.below(2) == 0 { 32 } else { 64 };
            token(rng, ALNUM, n)
        }
        "atlassian-api-token" => format!("ATATT3{}", token(rng, ALNUM, 186)),
        "slack-token" => match rng.below(5) {
            0 => {
                format!("xoxb-{}-{}-{}", rng.chars(DIGITS, 12), rng.chars(DIGITS, 13), token(rng, ALNUM, 24))
            }
            1 => format!(
                "xoxp-{}-{}-{}-{}",
                rng.chars(DIGITS, 12),
                rng.chars(DIGITS, 12),
                rng.chars(DIGITS, 13),
                rng.chars(HEX, 32)
            ),
            2 => format!(
                "xapp-1-A{}-{}-{}",
                token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                rng.chars(DIGITS, 13),
                rng.chars(HEX, 64)
            ),
            // legacy user and workspace tokens
            3 => format!(
                "{}-{}-{}-{}-{}",
                rng.pick(&["xoxs", "xoxo"]),
                rng.chars(DIGITS, 10),
                rng.chars(DIGITS, 11),
                rng.chars(DIGITS, 12),
                rng.chars(HEX, 64)
            ),
            // configuration refresh token
            _ => format!("xoxe-1-{}", token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 146)),
        },
        "slack-webhook-url" => format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
            token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
            token(rng, ALNUM, 24)
        ),
        "discord-webhook-url" => {
            format!(
                "https://discord.com/api/webhooks/{}/{}",
                rng.chars(DIGITS, 18),
                token(rng, &format!("{ALNUM}_-"), 68)
            )
        }
        "discord-api-token" => match rng.below(2) {
            0 => rng.chars(HEX, 64),
            _ => {
                let id = format!("1{}", rng.chars(DIGITS, 18));
                format!(
                    "{}.{}.{}",
                    base64(id.as_bytes(), B64URL, false),
                    token(rng, B64URL, 6),
                    token(rng, B64URL, 38)
                )
            }
        },
        "discord-client-id" => {
            let n = rng.range(16, 18);
            format!("1{}", rng.chars(DIGITS, n))
        }
        "discord-client-secret" => token(rng, &format!("{ALNUM}_-"), 32),
        "mattermost-access-token" => token(rng, "abcdefghijklmnopqrstuvwxyz0123456789", 26),
        "gitter-access-token" => rng.chars(HEX, 40),
        "teams-webhook-url" => format!(
            "https://contoso.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
            uuid(rng),
            uuid(rng),
            rng.chars(HEX, 32),
            uuid(rng)
        ),
        "telegram-bot-token" => {
            format!("{}:AA{}", rng.chars(DIGITS, 10).replacen('0', "1", 1), token(rng, ALNUM, 33))
        }
        "twilio-api-key" => format!("SK{}", rng.chars(HEX, 32)),
        "sendgrid-api-key" => format!("SG.{}.{}", token(rng, ALNUM, 22), token(rng, ALNUM, 43)),
        "mailgun-api-key" => format!("key-{}", rng.chars(HEX, 32)),
        "mailchimp-api-key" => format!("{}-us{}", rng.chars(HEX, 32), rng.range(1, 21)),
        "stripe-key" => {
            let n = rng.range(24, 99);
            format!("{}_{}_{}", rng.pick(&["sk", "rk"]), rng.pick(&["live", "test"]), token(rng, ALNUM, n))
        }
        "stripe-webhook-secret" => format!("whsec_{}", token(rng, ALNUM, 32)),
        "square-token" => match rng.below(3) {
            0 => format!("sq0atp-{}", token(rng, ALNUM, 22)),
            1 => format!("sq0csp-{}", token(rng, ALNUM, 43)),
            _ => format!("EAAA{}", token(rng, ALNUM, 60)),
        },
        "paypal-braintree-token" => format!(
            "access_token$production${}${}",
            rng.chars("abcdefghijklmnopqrstuvwxyz0123456789", 16),
            rng.chars(HEX, 32)
        ),
        "shopify-token" => format!("{}_{}", rng.pick(&["shpat", "shpss", "shpca"]), rng.chars(HEX, 32)),
        "flutterwave-public-key" => {
            format!("FLWPUBK{}-{}-X", rng.pick(&["", "_TEST"]), rng.chars(HEX, 32))
        }
        "flutterwave-secret-key" => {
            format!("FLWSECK{}-{}-X", rng.pick(&["", "_TEST"]), rng.chars(HEX, 32))
        }
        "flutterwave-encryption-key" => format!("FLWSECK_TEST{}", rng.chars(HEX, 12)),
        "gocardless-api-token" => {
            format!("{}_{}", rng.pick(&["live", "sandbox"]), token(rng, &format!("{ALNUM}_-"), 40))
        }
        "plaid-client-id" => rng.chars(HEX, 24),
        "plaid-secret-key" => rng.chars(HEX, 30),
        "plaid-api-token" => {
            format!("access-{}-{}", rng.pick(&["production", "development", "sandbox"]), uuid(rng))
        }
        "coinbase-access-token" => token(rng, &format!("{ALNUM}_-"), 64),
        "kraken-access-token" => base64(&rng.bytes(64), B64, true),
        "kucoin-access-token" => rng.chars(HEX, 24),
        "kucoin-secret-key" | "squarespace-access-token" => uuid(rng),
        "bittrex-access-key" | "bittrex-secret-key" => rng.chars(HEX, 32),
        "finicity-client-secret" => token(rng, ALNUM, 20),
        "finicity-api-token" => rng.chars(HEX, 32),
        "age-secret-key" => format!("AGE-SECRET-KEY-1{}", rng.chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)),
        "jwt" => {
            let header = base64(br#"{"alg":"HS256","typ":"JWT"}"#, B64URL, false);
            let payload = format!(
                r#"{{"sub":"{}","name":"user{}","iat":{},"exp":{}}}"#,
                rng.range(1000, 99999),
                rng.below(1000),
                1_700_000_000 + rng.below(10_000_000),
                1_800_000_000 + rng.below(10_000_000)
            );
            let sig = rng.bytes(32);
            format!("{header}.{}.{}", base64(payload.as_bytes(), B64URL, false), base64(&sig, B64URL, false))
        }
        "jwt-base64" => {
            let jwt = secret(rng, "jwt");
            base64(jwt.as_bytes(), B64, true)
        }
        "planetscale-password" => format!("pscale_pw_{}", token(rng, B64URL, 43)),
        "planetscale-api-token" => format!("pscale_tkn_{}", token(rng, B64URL, 43)),
        "planetscale-oauth-token" => format!("pscale_oauth_{}", token(rng, B64URL, 43)),
        "database-url-password" | "generic-api-key" | "generic-unquoted-secret" => {
            let n = rng.range(16, 40);
            token(rng, ALNUM, n)
        }
        "private-key" => pem_body(rng),
        other => panic!("no generator for rule `{other}`: add one to tests/it/corpus/generate.rs"),
    }
}

pub fn pem_body(rng: &mut Rng) -> String {
    let n = rng.range(600, 1200);
    let b = base64(&rng.bytes(n), B64, true);
    let lines: Vec<&str> = b.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    lines.join("\n")
}

/// Name of the environment variable / key a provider's secret usually sits under.
pub fn key_name(rule: &str) -> &'static str {
    match rule {
        "aws-access-key-id" => "AWS_ACCESS_KEY_ID",
        "aws-secret-access-key" => "AWS_SECRET_ACCESS_KEY",
        "aws-bedrock-api-key-long-lived" | "aws-bedrock-api-key-short-lived" => "AWS_BEARER_TOKEN_BEDROCK",
        "gcp-api-key" => "GOOGLE_MAPS_KEY",
        "heroku-api-key" | "heroku-api-key-v2" => "HEROKU_API_KEY",
        "alibaba-secret-key" => "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "cloudflare-global-api-key" => "CLOUDFLARE_GLOBAL_API_KEY",
        "cloudflare-api-token" => "CLOUDFLARE_API_TOKEN",
        "cloudflare-origin-ca-key" => "CLOUDFLARE_ORIGIN_CA_KEY",
        "flyio-access-token" => "FLY_API_TOKEN",
        "yandex-api-key" => "YC_API_KEY",
        "yandex-aws-access-token" => "YANDEX_STORAGE_SECRET_KEY",
        "yandex-iam-token" => "YC_IAM_TOKEN",
        "confluent-access-token" => "CONFLUENT_CLOUD_API_KEY",
        "confluent-secret-key" => "CONFLUENT_CLOUD_API_SECRET",
        "bitbucket-client-id" => "BITBUCKET_CLIENT_ID",
        "bitbucket-client-secret" => "BITBUCKET_CLIENT_SECRET",
        "discord-api-token" => "DISCORD_BOT_TOKEN",
        "discord-client-id" => "DISCORD_CLIENT_ID",
        "discord-client-secret" => "DISCORD_CLIENT_SECRET",
        "mattermost-access-token" => "MATTERMOST_ACCESS_TOKEN",
        "gitter-access-token" => "GITTER_TOKEN",
        "gocardless-api-token" => "GOCARDLESS_ACCESS_TOKEN",
        "plaid-client-id" => "PLAID_CLIENT_ID",
        "plaid-secret-key" => "PLAID_SECRET",
        "plaid-api-token" => "PLAID_ACCESS_TOKEN",
        "coinbase-access-token" => "COINBASE_API_SECRET",
        "kraken-access-token" => "KRAKEN_PRIVATE_KEY",
        "kucoin-access-token" => "KUCOIN_API_KEY",
        "kucoin-secret-key" => "KUCOIN_API_SECRET",
        "bittrex-access-key" => "BITTREX_API_KEY",
        "bittrex-secret-key" => "BITTREX_API_SECRET",
        "squarespace-access-token" => "SQUARESPACE_API_KEY",
        "finicity-client-secret" => "FINICITY_PARTNER_SECRET",
        "finicity-api-token" => "FINICITY_APP_KEY",
        "telegram-bot-token" => "TELEGRAM_BOT_TOKEN",
        "twilio-api-key" => "TWILIO_API_KEY",
        "mailgun-api-key" => "MAILGUN_API_KEY",
        "slack-webhook-url" | "discord-webhook-url" | "teams-webhook-url" => "ALERT_WEBHOOK_URL",
        "stripe-webhook-secret" => "STRIPE_WEBHOOK_SECRET",
        _ => "SERVICE_CREDENTIAL",
    }
}

fn filler(rng: &mut Rng) -> String {
    let lines = [
        "# configuration for the staging environment",
        "LOG_LEVEL=info",
        "PORT=8080",
        "REGION=eu-west-1",
        "FEATURE_FLAGS=search,checkout",
        "TIMEOUT_SECONDS=30",
    ];
    let mut out = String::new();
    for _ in 0..rng.range(0, 3) {
        out.push_str(rng.pick(&lines));
        out.push('\n');
    }
    out
}

/// Rules that need the provider's name beside the secret (their shape alone is too common).
pub const NEEDS_NAME: &[&str] = &[
    "aws-secret-access-key",
    "heroku-api-key",
    "telegram-bot-token",
    "twilio-api-key",
    "mailgun-api-key",
    "alibaba-secret-key",
    "cloudflare-global-api-key",
    "cloudflare-api-token",
    "yandex-aws-access-token",
    "yandex-iam-token",
    "confluent-access-token",
    "confluent-secret-key",
    "bitbucket-client-id",
    "bitbucket-client-secret",
    "discord-api-token",
    "discord-client-id",
    "discord-client-secret",
    "mattermost-access-token",
    "gitter-access-token",
    "gocardless-api-token",
    "plaid-client-id",
    "plaid-secret-key",
    "coinbase-access-token",
    "kraken-access-token",
    "kucoin-access-token",
    "kucoin-secret-key",
    "bittrex-access-key",
    "bittrex-secret-key",
    "squarespace-access-token",
    "finicity-client-secret",
    "finicity-api-token",
];

/// A positive sample file: the secret of `rule` in context `variant`; returns the text and the line
/// the secret (or its PEM block) starts on.
fn positive(rng: &mut Rng, rule: &str, variant: usize) -> (String, String, u32) {
    let before = filler(rng);
    let pre = u32::try_from(before.lines().count()).expect("small");
    let s = secret(rng, rule);
    let name = key_name(rule);
    let (ext, body, offset): (&str, String, u32) = match rule {
        "private-key" => {
            let kind = [
                "RSA PRIVATE KEY",
                "EC PRIVATE KEY",
                "PRIVATE KEY",
                "OPENSSH PRIVATE KEY",
                "ENCRYPTED PRIVATE KEY",
            ][variant % 5];
            if variant % 4 == 3 {
                let escaped = s.replace('\n', "\\n");
                (
                    "json",
                    format!(
                        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo-{}\",\n  \"private_key\": \"-----BEGIN {kind}-----\\n{escaped}\\n-----END {kind}-----\\n\",\n  \"client_email\": \"svc@demo.iam.gserviceaccount.com\"\n}}\n",
                        rng.below(1000)
                    ),
                    3,
                )
            } else {
                ("pem", format!("-----BEGIN {kind}-----\n{s}\n-----END {kind}-----\n"), 0)
            }
        }
        "database-url-password" => {
            let url = match variant % 6 {
                0 => format!("postgres://app:{s}@db.internal:5432/app"),
                1 => format!("postgresql://svc_orders:{s}@10.0.3.7/orders?sslmode=require"),
                2 => format!("mysql://root:{s}@mysql.prod.svc:3306/shop"),
                3 => format!("mongodb+srv://admin:{s}@cluster0.ab1cd.mongodb.net/test"),
                4 => format!("redis://default:{s}@cache-001.use1.cache.amazonaws.com:6379/0"),
                _ => format!("amqps://worker:{s}@rabbit.internal:5671/vhost"),
            };
            match variant % 3 {
                0 => ("env", format!("DATABASE_URL={url}\n"), 0),
                1 => ("yaml", format!("database:\n  url: \"{url}\"\n"), 1),
                _ => ("py", format!("ENGINE = create_engine(\"{url}\")\n"), 0),
            }
        }
        "generic-api-key" => {
            let n = rng.range(14, 30);
            let pw = format!("{}{}", token(rng, ALNUM, n), rng.pick(&["!", "#", "%", ""]));
            match variant % 6 {
                0 => ("py", format!("API_KEY = \"{s}\"\n"), 0),
                1 => ("js", format!("const config = {{\n  clientSecret: '{s}',\n}};\n"), 1),
                2 => ("yaml", format!("payments:\n  api_token: \"{s}\"\n"), 1),
                3 => ("json", format!("{{\n  \"auth_token\": \"{s}\"\n}}\n"), 1),
                4 => (
                    "tf",
                    format!("variable \"x\" {{}}\nresource \"svc\" \"a\" {{\n  password = \"{pw}\"\n}}\n"),
                    2,
                ),
                _ => ("rs", format!("const SIGNING_KEY: &str = \"{s}\";\n"), 0),
            }
        }
        "generic-unquoted-secret" => match variant % 3 {
            0 => ("env", format!("SERVICE_TOKEN={s}\n"), 0),
            1 => ("properties", format!("spring.datasource.password={s}\n"), 0),
            _ => ("sh", format!("export INTERNAL_API_KEY={s}\n"), 0),
        },
        "paypal-braintree-token" | "slack-webhook-url" | "discord-webhook-url" | "teams-webhook-url" => {
            match variant % 3 {
                0 => ("env", format!("{name}={s}\n"), 0),
                1 => ("yaml", format!("notify:\n  url: {s}\n"), 1),
                _ => ("js", format!("fetch(\"{s}\", {{ method: \"POST\" }});\n"), 0),
            }
        }
        "azure-storage-account-key" => (
            "env",
            format!(
                "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=store{};AccountKey={s};EndpointSuffix=core.windows.net\n",
                rng.below(100)
            ),
            0,
        ),
        _ if NEEDS_NAME.contains(&rule) => {
            let lower = name.to_lowercase();
            match variant % 5 {
                0 => ("env", format!("{name}={s}\n"), 0),
                1 => ("yaml", format!("credentials:\n  {lower}: \"{s}\"\n"), 1),
                2 => ("json", format!("{{\n  \"{lower}\": \"{s}\"\n}}\n"), 1),
                3 => ("py", format!("{name} = \"{s}\"\n"), 0),
                _ => ("ini", format!("[default]\n{lower} = {s}\n"), 1),
            }
        }
        _ => match variant % 5 {
            0 => ("env", format!("{name}={s}\n"), 0),
            1 => ("yaml", format!("env:\n  - name: {name}\n    value: \"{s}\"\n"), 2),
            2 => ("json", format!("{{\n  \"{}\": \"{s}\"\n}}\n", name.to_lowercase()), 1),
            3 => ("py", format!("client = Client(\"{s}\")\n"), 0),
            _ => ("sh", format!("curl -H \"Authorization: Bearer {s}\" https://api.example.net/v1/me\n"), 0),
        },
    };
    (ext.to_owned(), format!("{before}{body}"), pre + offset + 1)
}

/// Hard negatives: each generator gives a file that holds no secret.
pub const NEGATIVE_KINDS: &[&str] = &[
    "uuid",
    "hash",
    "placeholder",
    "base64-image",
    "minified-js",
    "lockfile",
    "public-key",
    "code-reads-secret",
    "prose",
];

fn negative(rng: &mut Rng, kind: &str, variant: usize) -> (String, String) {
    let mut out = String::new();
    let ext = match kind {
        "uuid" => {
            for _ in 0..rng.range(3, 8) {
                let u = uuid(rng);
                let line = match rng.below(6) {
                    0 => format!("request_id = \"{u}\""),
                    1 => format!("\"id\": \"{u}\","),
                    2 => format!("trace_id: {u}"),
                    3 => format!("idempotency_key = \"{u}\""),
                    4 => format!("tenant_key: \"{u}\""),
                    _ => format!("INSERT INTO users (id) VALUES ('{u}');"),
                };
                out.push_str(&line);
                out.push('\n');
            }
            "txt"
        }
        "hash" => {
            for _ in 0..rng.range(3, 8) {
                let line = match rng.below(7) {
                    0 => format!("sha256 = \"{}\"", rng.chars(HEX, 64)),
                    1 => format!("\"checksum\": \"{}\",", rng.chars(HEX, 64)),
                    2 => format!("commit = \"{}\"", rng.chars(HEX, 40)),
                    3 => format!("md5: {}", rng.chars(HEX, 32)),
                    4 => format!("ETag: \"{}\"", rng.chars(HEX, 32)),
                    5 => format!("cache_key = \"sha256:{}\"", rng.chars(HEX, 64)),
                    _ => format!("image: ghcr.io/acme/api@sha256:{}", rng.chars(HEX, 64)),
                };
                out.push_str(&line);
                out.push('\n');
            }
            "txt"
        }
        "placeholder" => {
            let lines = [
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE".to_owned(),
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
                "STRIPE_KEY=sk_test_xxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
                "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_owned(),
                "api_key = \"<your-api-key>\"".to_owned(),
                "password = \"${DB_PASSWORD}\"".to_owned(),
                "token: {{ .Values.slack.token }}".to_owned(),
                "DATABASE_URL=postgres://user:password@localhost:5432/app".to_owned(),
                "DATABASE_URL=postgres://postgres:${PGPASSWORD}@db:5432/app".to_owned(),
                "SECRET_KEY=changeme".to_owned(),
                "api_key = \"your_api_key_here\"".to_owned(),
                "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
                    .to_owned(),
                "OPENAI_API_KEY=sk-...".to_owned(),
                "client_secret: \"**********\"".to_owned(),
                "password: \"<%= ENV['DB_PASSWORD'] %>\"".to_owned(),
                "token = \"REPLACE_WITH_YOUR_TOKEN\"".to_owned(),
                "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----".to_owned(),
                "mongodb://admin:admin@localhost:27017".to_owned(),
                "AZURE_CLIENT_SECRET=<client-secret>".to_owned(),
                "npm_token = \"npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"".to_owned(),
            ];
            for _ in 0..rng.range(3, 7) {
                out.push_str(&lines[rng.below(lines.len())]);
                out.push('\n');
            }
            "env"
        }
        "base64-image" => {
            let n = rng.range(900, 3000);
            let png = base64(&rng.bytes(n), B64, true);
            let _ = writeln!(
                out,
                ".logo {{ background-image: url(\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{png}\"); }}"
            );
            let n = rng.range(300, 900);
            let svg = base64(&rng.bytes(n), B64, true);
            let _ =
                writeln!(out, "<img alt=\"icon\" src=\"data:image/svg+xml;base64,PHN2ZyB4bWxucz0i{svg}\">");
            "css"
        }
        "minified-js" => {
            let ids = ["apiKey", "authToken", "secretKey", "accessKey", "tokenType", "keyPath", "authHeader"];
            let mut line = String::from("!function(e,t){\"use strict\";");
            for i in 0..rng.range(40, 120) {
                let id = rng.pick(&ids);
                let v = rng.chars(LOWER, 1);
                let _ = match rng.below(6) {
                    0 => write!(line, "var {v}{i}=function(n,r){{return n.{id}===r.{id}}};"),
                    1 => write!(line, "{id}:{v}.{id}||\"\","),
                    2 => write!(line, "headers:{{Authorization:\"Bearer \"+{v}.{id}}},"),
                    3 => write!(line, "{v}.prototype.{id}=function(){{return this._{id}{i}}};"),
                    4 => write!(
                        line,
                        "var {v}{i}=\"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\";"
                    ),
                    _ => write!(line, "if({v}.{id}&&{v}.{id}.length>{i})throw new Error(\"invalid {id}\");"),
                };
            }
            line.push_str("}(this,function(){});");
            out.push_str(&line);
            out.push('\n');
            "min.js"
        }
        "lockfile" => match variant % 4 {
            0 => {
                for _ in 0..rng.range(3, 6) {
                    let _ = write!(
                        out,
                        "    \"node_modules/pkg-{}\": {{\n      \"version\": \"1.{}.0\",\n      \"resolved\": \"https://registry.npmjs.org/pkg/-/pkg-1.0.0.tgz\",\n      \"integrity\": \"sha512-{}\"\n    }},\n",
                        rng.below(100),
                        rng.below(20),
                        base64(&rng.bytes(64), B64, true)
                    );
                }
                "package-lock.json"
            }
            1 => {
                for _ in 0..rng.range(3, 6) {
                    let _ = write!(
                        out,
                        "pkg-{n}@^1.0.0:\n  version \"1.0.{n}\"\n  resolved \"https://registry.yarnpkg.com/pkg-{n}/-/pkg-{n}-1.0.0.tgz#{}\"\n  integrity sha512-{}\n\n",
                        rng.chars(HEX, 40),
                        base64(&rng.bytes(64), B64, true),
                        n = rng.below(100)
                    );
                }
                "yarn.lock"
            }
            2 => {
                for _ in 0..rng.range(3, 6) {
                    let _ = write!(
                        out,
                        "[[package]]\nname = \"crate-{}\"\nversion = \"0.{}.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n\n",
                        rng.below(100),
                        rng.below(30),
                        rng.chars(HEX, 64)
                    );
                }
                "Cargo.lock"
            }
            _ => {
                for _ in 0..rng.range(3, 6) {
                    let _ = write!(
                        out,
                        "  /pkg-{}@1.0.0:\n    resolution: {{integrity: sha512-{}}}\n    dev: false\n",
                        rng.below(100),
                        base64(&rng.bytes(64), B64, true)
                    );
                }
                "pnpm-lock.yaml"
            }
        },
        "public-key" => {
            let body = pem_body(rng);
            match variant % 3 {
                0 => {
                    let _ = write!(out, "-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
                }
                1 => {
                    let _ = write!(out, "-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} deploy@ci",
                        base64(&rng.bytes(32), B64, false)
                    );
                }
            }
            "pem"
        }
        "code-reads-secret" => {
            let lines = [
                "password = os.environ[\"DB_PASSWORD\"]",
                "token = self.token",
                "api_key = config.get(\"api_key\")",
                "const secret = process.env.JWT_SECRET;",
                "let key = std::env::var(\"API_KEY\")?;",
                "auth_token: ${{ secrets.DEPLOY_TOKEN }}",
                "SECRET_KEY_BASE = Rails.application.credentials.secret_key_base",
                "password_field = forms.CharField(widget=forms.PasswordInput)",
                "if (token.length < 32) throw new Error('token too short');",
                "private_key_path = \"/etc/ssl/private/server.key\"",
                "api_key_header = \"X-Api-Key\"",
                "secret_name = \"prod/payments/stripe_api_key_v2\"",
                "token_url = \"https://oauth2.googleapis.com/token\"",
                "key_id = \"kms-key-prod-eu-west-1-2024\"",
            ];
            for _ in 0..rng.range(3, 8) {
                out.push_str(lines[rng.below(lines.len())]);
                out.push('\n');
            }
            "py"
        }
        _ => {
            let lines = [
                "The access key rotation runbook lives in docs/runbook.md; rotate every 90 days.",
                "Set the token in the environment, never in this file (see README, section Secrets).",
                "Passwords must be at least 12 characters and are stored hashed with argon2id.",
                "Keys are derived with HKDF-SHA256 from the master key held in KMS.",
                "The API authenticates with a bearer token issued by the identity provider.",
            ];
            for _ in 0..rng.range(3, 8) {
                out.push_str(lines[rng.below(lines.len())]);
                out.push('\n');
            }
            "md"
        }
    };
    (ext.to_owned(), out)
}

/// The whole corpus for `rules` (every builtin rule id): `per_rule` positives each, and `per_kind`
/// negatives of each hard-negative kind.
pub fn corpus(rules: &[String], per_rule: usize, per_kind: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut samples = Vec::new();
    for rule in rules {
        for i in 0..per_rule {
            let (ext, text, line) = positive(&mut rng, rule, i);
            samples.push(Sample {
                path: format!("positive/{rule}/{i:03}.{ext}"),
                text,
                secrets: vec![(line, rule.clone())],
            });
        }
    }
    for kind in NEGATIVE_KINDS {
        for i in 0..per_kind {
            let (ext, text) = negative(&mut rng, kind, i);
            samples.push(Sample { path: format!("negative/{kind}/{i:03}.{ext}"), text, secrets: Vec::new() });
        }
    }
    samples
}
