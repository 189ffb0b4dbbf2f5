//! Audit export for auditors and SIEMs: JSON Lines (one `AuditRecord` per line, with its
//! hashes, so the chain can be re-verified elsewhere) or CSV for spreadsheets, where no
//! field can run as a formula.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::audit::AuditRecord;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// An export format nobody knows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an export format; use jsonl or csv")]
pub struct UnknownFormat(String);

impl FromStr for ExportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        })
    }
}

const CSV_HEADER: &str = "seq,at,actor,action,request,grant,reason,policy,hash,prev_hash,details";

/// Writes the records at or after `since` to `out`; the number of records written.
/// CSV follows RFC 4180: CRLF line ends, and fields quoted when they need it.
pub fn export_audit(
    records: impl Iterator<Item = AuditRecord>,
    format: ExportFormat,
    since: Option<DateTime<Utc>>,
    out: &mut impl Write,
) -> io::Result<usize> {
    if format == ExportFormat::Csv {
        write!(out, "{CSV_HEADER}\r\n")?;
    }
    let mut written = 0;
    for record in records.filter(|r| since.is_none_or(|since| r.event.at >= since)) {
        match format {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            ExportFormat::Csv => write_csv_row(out, &record)?,
        }
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

fn write_csv_row(out: &mut impl Write, record: &AuditRecord) -> io::Result<()> {
    let event = &record.event;
    let fields = [
        record.seq.to_string(),
        event.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        event.actor.to_string(),
        event.action.name(),
        event.request.map(|id| id.to_string()).unwrap_or_default(),
        event.grant.map(|id| id.to_string()).unwrap_or_default(),
        event.reason.clone().unwrap_or_default(),
        event.policy.clone().unwrap_or_default(),
        record.hash.clone(),
        record.prev_hash.clone(),
        serde_json::to_string(&event.action)?,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_csv_field(out, field)?;
    }
    out.write_all(b"\r\n")
}

/// One field. A field that a spreadsheet would read as a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return: OWASP's list for CSV injection) is written as text,
/// with a single quote before it and in quotes; anyone who can ask for access writes the
/// reasons exported here. JSON Lines is exact: this is for CSV only.
fn write_csv_field(out: &mut impl Write, field: &str) -> io::Result<()> {
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        write!(out, "\"'{}\"", field.replace('"', "\"\""))
    } else if field.contains([',', '"', '\r', '\n']) {
        write!(out, "\"{}\"", field.replace('"', "\"\""))
    } else {
        out.write_all(field.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Actor, AuditAction, AuditEvent, GENESIS_HASH};
    use crate::domain::ids::{PersonId, RequestId};
    use chrono::TimeZone;

    fn records(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let at = Utc
                    .timestamp_opt(1_700_000_000 + 60 * seq as i64, 0)
                    .unwrap();
                let event = AuditEvent::new(
                    at,
                    Actor::person(&PersonId::new("ann")),
                    AuditAction::RequestRejected,
                )
                .request(RequestId(seq))
                .reason(format!("reason {seq}"));
                let record = AuditRecord::chain(seq, &prev, event);
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    fn export(
        records: Vec<AuditRecord>,
        format: ExportFormat,
        since: Option<DateTime<Utc>>,
    ) -> (usize, String) {
        let mut out = Vec::new();
        let n = export_audit(records.into_iter(), format, since, &mut out).unwrap();
        (n, String::from_utf8(out).unwrap())
    }

    #[test]
    fn formats_parse_and_unknown_ones_say_what_is_allowed() {
        assert_eq!("jsonl".parse::<ExportFormat>(), Ok(ExportFormat::Jsonl));
        assert_eq!("CSV".parse::<ExportFormat>(), Ok(ExportFormat::Csv));
        let err = "xml".parse::<ExportFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`xml` is not an export format; use jsonl or csv"
        );
    }

    #[test]
    fn jsonl_writes_one_record_per_line_that_reads_back() {
        let (n, text) = export(records(3), ExportFormat::Jsonl, None);
        assert_eq!(n, 3);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let back: AuditRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back, records(3)[1]);
    }

    #[test]
    fn since_leaves_out_older_events() {
        let all = records(5);
        let since = all[2].event.at;
        let (n, text) = export(all, ExportFormat::Jsonl, Some(since));
        assert_eq!(n, 3);
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().next().unwrap().contains("\"seq\":3"));
        let (n, text) = export(records(5), ExportFormat::Csv, Some(since));
        assert_eq!(n, 3);
        assert_eq!(text.lines().count(), 4, "header and three rows");
    }

    #[test]
    fn csv_has_the_header_and_one_row_per_record() {
        let recs = records(2);
        let (n, text) = export(recs.clone(), ExportFormat::Csv, None);
        assert_eq!(n, 2);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        let expected = format!(
            "1,2023-11-14T22:14:20Z,ann,request_rejected,AR-1,,reason 1,,{},{},\"{{\"\"action\"\":\"\"request_rejected\"\"}}\"",
            recs[0].hash, GENESIS_HASH
        );
        assert_eq!(lines[1], expected);
        assert_eq!(lines[3], "", "the last row ends with CRLF");
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks() {
        let mut recs = records(1);
        recs[0].event.reason = Some("needs \"prod\", now\nplease".into());
        recs[0].event.policy = Some("workflow:plain".into());
        recs[0].event.actor = Actor::Operator {
            token: "ci".into(),
            for_person: PersonId::new("bo"),
            impersonated: false,
        };
        let (_, text) = export(recs, ExportFormat::Csv, None);
        assert!(
            text.contains(",\"needs \"\"prod\"\", now\nplease\",workflow:plain,"),
            "{text}"
        );
        assert!(text.contains(",bo (via admin token ci),"), "{text}");
    }

    #[test]
    fn csv_fields_that_a_spreadsheet_would_run_are_written_as_text() {
        let quoted = |s: &str| {
            let mut out = Vec::new();
            write_csv_field(&mut out, s).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(quoted("=1+2"), "\"'=1+2\"");
        assert_eq!(
            quoted("@SUM(1+9)*cmd|' /C calc'!A0"),
            "\"'@SUM(1+9)*cmd|' /C calc'!A0\""
        );
        assert_eq!(quoted("+1"), "\"'+1\"");
        assert_eq!(quoted("-2+3"), "\"'-2+3\"");
        assert_eq!(quoted("\t=1"), "\"'\t=1\"");
        assert_eq!(quoted("\r=1"), "\"'\r=1\"");
        assert_eq!(quoted("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(quoted("fixing 1+1=2"), "fixing 1+1=2");
    }

    #[test]
    fn formula_reasons_are_neutralised_in_csv_and_exact_in_jsonl() {
        let mut recs = records(2);
        recs[0].event.reason = Some("=1+2".into());
        recs[1].event.reason = Some("@SUM(1+9)*cmd|' /C calc'!A0".into());
        let (_, csv) = export(recs.clone(), ExportFormat::Csv, None);
        let rows: Vec<&str> = csv.split("\r\n").collect();
        assert!(rows[1].contains(",\"'=1+2\","), "{csv}");
        assert!(
            rows[2].contains(",\"'@SUM(1+9)*cmd|' /C calc'!A0\","),
            "{csv}"
        );
        let (_, jsonl) = export(recs.clone(), ExportFormat::Jsonl, None);
        let back: Vec<AuditRecord> = jsonl
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(back, recs);
    }

    #[test]
    fn csv_field_quoting_follows_rfc_4180() {
        let quoted = |s: &str| {
            let mut out = Vec::new();
            write_csv_field(&mut out, s).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(quoted("plain"), "plain");
        assert_eq!(quoted(""), "");
        assert_eq!(quoted("a,b"), "\"a,b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("line\r\nbreak"), "\"line\r\nbreak\"");
    }
}
