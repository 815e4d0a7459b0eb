use super::Finding;
use crate::model::Status;
use crate::spec::{Date, ManualCheck};

pub(super) fn probe(check: &ManualCheck, today: Date) -> Finding {
    let owner = check.owner.as_deref().map(|o| format!(" (owner: {o})")).unwrap_or_default();
    let Some(on) = check.attested_on else {
        return Finding::new(
            Status::ManualPending,
            format!("not attested yet{owner}; set attested_at and evidence"),
        );
    };
    let evidence = check.evidence.as_deref().map(|e| format!(", evidence: {e}")).unwrap_or_default();
    // `today` is the UTC date; an operator east of UTC attests on their own date, up to a day ahead.
    if on.days_since_epoch() > today.days_since_epoch() + 1 {
        return Finding::error(format!("attested_at {on} is in the future"));
    }
    if let Some(expiry) = check.expires_after {
        let valid_days = i64::try_from(expiry.as_secs() / 86_400).unwrap_or(i64::MAX);
        let until = Date::from_days_since_epoch(on.days_since_epoch().saturating_add(valid_days));
        if until < today {
            return Finding::new(
                Status::ManualExpired,
                format!("attested {on}, expired {until}{owner}; redo it and update attested_at"),
            );
        }
        if check.evidence.is_none() {
            return Finding::new(
                Status::Warn,
                format!("attested {on}, valid until {until}, but no evidence link"),
            );
        }
        return Finding::pass(format!("attested {on}{owner}, valid until {until}{evidence}"));
    }
    if check.evidence.is_none() {
        return Finding::new(Status::Warn, format!("attested {on}{owner}, but no evidence link"));
    }
    Finding::pass(format!("attested {on}{owner}{evidence}"))
}

/// Every manual attestation of the run is current (attested, not expired, not in the future): the
/// pre-launch checklist is complete. Lists the ones that are not.
pub(super) fn attestations(manual: &[(String, ManualCheck)], today: Date) -> Finding {
    if manual.is_empty() {
        return Finding::new(
            Status::Warn,
            "no manual attestation is declared, so there is nothing to complete",
        );
    }
    let open: Vec<String> = manual
        .iter()
        .filter_map(|(id, check)| {
            let finding = probe(check, today);
            (!finding.status.is_passed()).then(|| format!("{id} ({})", finding.status.name()))
        })
        .collect();
    if open.is_empty() {
        Finding::pass(format!("all {} manual attestations are current", manual.len()))
    } else {
        Finding::fail(format!(
            "{} of {} manual attestations not current: {}",
            open.len(),
            manual.len(),
            open.join(", ")
        ))
    }
}
