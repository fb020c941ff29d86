//! Statistics on government responses (published at `/v1/responses`): per agency and
//! province, how many submissions it answered, how many responses it posted, where the
//! matters stand (the status of its latest response to each), and the median days from
//! filing to its first response. The median is disclosure-controlled like a cell's statistics
//! (methodology §4): below k answered submissions only the counts are published.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One posted response, with what the statistics need of its submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub submission: String,
    pub agency: String,
    /// The submission's vn-34 province.
    pub province: String,
    /// The response's status (acknowledged, in_progress, resolved, not_actionable).
    pub status: String,
    pub filed_at: DateTime<Utc>,
    pub posted_at: DateTime<Utc>,
}

/// The statistics of one agency in one province.
#[derive(Debug, Clone, PartialEq)]
pub struct AgencyStats {
    pub agency: String,
    pub province: String,
    /// Submissions the agency answered at least once.
    pub submissions: u32,
    /// Responses posted (an agency may answer a submission several times).
    pub responses: u32,
    /// Submissions by the status of the agency's latest response to each.
    pub latest_status: BTreeMap<String, u32>,
    /// Fewer answered submissions than k (at least [`crate::cell::MIN_K`]).
    pub suppressed: bool,
    /// Median calendar days from filing to the agency's first response (unrounded); `None`
    /// when suppressed.
    pub median_days_to_first_response: Option<f64>,
}

/// Folds `responses` (each submission's in the order they were posted) into statistics per
/// (agency, province), in that order; `k` is the disclosure threshold.
pub fn by_agency(responses: &[Response], k: usize) -> Vec<AgencyStats> {
    // (agency, province) -> submission -> (filed, first posted, latest status, responses)
    type PerSubmission<'a> = BTreeMap<&'a str, (DateTime<Utc>, DateTime<Utc>, &'a str, u32)>;
    let mut groups: BTreeMap<(&str, &str), PerSubmission> = BTreeMap::new();
    for r in responses {
        let entry = groups
            .entry((r.agency.as_str(), r.province.as_str()))
            .or_default()
            .entry(r.submission.as_str())
            .or_insert((r.filed_at, r.posted_at, r.status.as_str(), 0));
        entry.2 = r.status.as_str();
        entry.3 += 1;
    }
    groups
        .into_iter()
        .map(|((agency, province), submissions)| {
            let mut latest_status = BTreeMap::new();
            let mut days = Vec::with_capacity(submissions.len());
            let mut responses = 0;
            for (filed, first, status, n) in submissions.values() {
                *latest_status.entry(status.to_string()).or_insert(0) += 1;
                responses += n;
                days.push((*first - *filed).num_seconds() as f64 / 86_400.0);
            }
            let suppressed = crate::cell::is_suppressed(submissions.len(), k);
            AgencyStats {
                agency: agency.to_string(),
                province: province.to_string(),
                submissions: u32::try_from(submissions.len()).unwrap_or(u32::MAX),
                responses,
                latest_status,
                suppressed,
                median_days_to_first_response: if suppressed {
                    None
                } else {
                    crate::percentile::median(&crate::percentile::sorted(days))
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: &str, agency: &str, status: &str, filed: &str, posted: &str) -> Response {
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        Response {
            submission: id.into(),
            agency: agency.into(),
            province: "79".into(),
            status: status.into(),
            filed_at: at(filed),
            posted_at: at(posted),
        }
    }

    #[test]
    fn first_responses_latest_statuses_and_suppression() {
        let filed = "2025-10-01T00:00:00Z";
        let responses = [
            // Answered after 2 days, then resolved.
            response("a", "DPI", "acknowledged", filed, "2025-10-03T00:00:00Z"),
            response("a", "DPI", "resolved", filed, "2025-10-20T00:00:00Z"),
            // Answered after 12 hours.
            response("b", "DPI", "in_progress", filed, "2025-10-01T12:00:00Z"),
            // Answered after 7 days.
            response("c", "DPI", "not_actionable", filed, "2025-10-08T00:00:00Z"),
            response("c", "Tax", "acknowledged", filed, "2025-10-02T00:00:00Z"),
        ];
        // k = 3: DPI answered 3 submissions (published), Tax 1 (suppressed).
        let stats = by_agency(&responses, 3);
        assert_eq!(stats.len(), 2);
        let dpi = &stats[0];
        assert_eq!(
            (dpi.agency.as_str(), dpi.submissions, dpi.responses),
            ("DPI", 3, 4)
        );
        assert_eq!(
            dpi.latest_status,
            BTreeMap::from([
                ("in_progress".to_string(), 1),
                ("not_actionable".to_string(), 1),
                ("resolved".to_string(), 1)
            ])
        );
        // First responses after 0.5, 2 and 7 days: the median is 2.
        assert_eq!(dpi.median_days_to_first_response, Some(2.0));
        assert!(!dpi.suppressed);
        let tax = &stats[1];
        assert_eq!((tax.submissions, tax.suppressed), (1, true));
        assert_eq!(tax.median_days_to_first_response, None, "counts only");
        // k is never below the methodology's minimum (3): k = 1 still suppresses Tax.
        assert!(by_agency(&responses, 1)[1].suppressed);
        assert!(!by_agency(&responses, 1)[0].suppressed);
    }
}
