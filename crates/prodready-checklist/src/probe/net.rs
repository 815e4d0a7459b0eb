use std::sync::Arc;
use std::time::Instant;

use prodready_tls::AcceptAny;
use rustls::pki_types::ServerName;

use super::{Finding, millis};
use crate::model::Status;
use crate::spec::Date;

pub(super) async fn tcp(address: &str) -> Finding {
    let started = Instant::now();
    match tokio::net::TcpStream::connect(address).await {
        Ok(_) => Finding::pass(format!("{address} accepted a connection in {}", millis(started.elapsed()))),
        Err(e) => Finding::fail(format!("{address}: {e}")),
    }
}

/// Reads the certificate a TLS server presents and judges its expiry. Trust is not this check's business
/// (an HTTP check against an https URL verifies the chain), so any certificate is accepted for reading.
pub(super) async fn tls(
    address: &str,
    server_name: Option<&str>,
    min_days: u32,
    warn_days: u32,
    now_unix: i64,
) -> Finding {
    let host = server_name.unwrap_or_else(|| address.rsplit_once(':').map_or(address, |(h, _)| h));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = match ServerName::try_from(host.to_owned()) {
        Ok(name) => name,
        Err(e) => return Finding::error(format!("`{host}` is not a valid server name: {e}")),
    };
    let provider = prodready_tls::provider();
    let config = match rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny::new(provider)))
            .with_no_client_auth(),
        Err(e) => return Finding::error(format!("TLS set-up: {e}")),
    };
    let tcp = match tokio::net::TcpStream::connect(address).await {
        Ok(s) => s,
        Err(e) => return Finding::fail(format!("{address}: {e}")),
    };
    let stream = match tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await {
        Ok(s) => s,
        Err(e) => {
            return Finding::fail(format!(
                "{address}: TLS handshake failed: {}",
                prodready_stdx::error::chain(&e)
            ));
        }
    };
    let Some(cert) = stream.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return Finding::fail(format!("{address} presented no certificate"));
    };
    let not_after = match x509_parser::parse_x509_certificate(cert.as_ref()) {
        Ok((_, cert)) => cert.validity().not_after.timestamp(),
        Err(e) => return Finding::error(format!("{address}: unreadable certificate: {e}")),
    };
    let until = Date::from_days_since_epoch(not_after.div_euclid(86_400));
    let days_left = (not_after - now_unix).div_euclid(86_400);
    if not_after <= now_unix {
        Finding::fail(format!("{host}: certificate expired on {until}"))
    } else if days_left < i64::from(min_days) {
        Finding::fail(format!(
            "{host}: certificate expires on {until}, in {days_left} days (minimum {min_days})"
        ))
    } else if days_left < i64::from(warn_days) {
        Finding::new(
            Status::Warn,
            format!("{host}: certificate expires on {until}, in {days_left} days (renew within {warn_days})"),
        )
    } else {
        Finding::pass(format!("{host}: certificate valid until {until} ({days_left} days)"))
    }
}
