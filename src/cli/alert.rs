//! `frameseek alert add|list|remove` (standing queries) and `frameseek alerts --follow |
//! --since` (their incidents), over the daemon's alert requests.

use anyhow::{bail, Context};

use super::status::strip_ok;
use super::{connect, format_ms, print_table, Cli, EXIT_OK};
use crate::protocol::{
    AlertAddReply, AlertAddRequest, AlertInfo, AlertListReply, AlertRemoveReply,
    AlertRemoveRequest, AlertsHistoryReply, AlertsHistoryRequest, IncidentInfo, Request,
};

/// `frameseek alert ...`.
#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AlertAction,
}

/// The alert subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AlertAction {
    /// Store a standing query: new footage matching TEXT raises incidents.
    Add(AddArgs),
    /// List the standing queries.
    List,
    /// Remove a standing query (its recorded incidents stay in the history).
    Remove {
        /// The alert's name.
        name: String,
    },
}

/// Arguments of `alert add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// A unique name (letters, digits, '-', '_', '.').
    pub name: String,
    /// What to look for, in words.
    pub text: String,
    /// Only sources matching this id or glob (as `search --source`).
    #[arg(long, value_name = "GLOB")]
    pub source: Option<String>,
    /// The part of the frame it is about, as fractions of the frame: x,y,w,h.
    #[arg(long, value_name = "X,Y,W,H", value_parser = parse_region)]
    pub region: Option<[f32; 4]>,
    /// Only footage recorded in this daily window, UTC (e.g. 22:00-06:00).
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub between: Option<String>,
    /// Lowest calibrated confidence of a matching frame (default 0.5).
    #[arg(long, value_name = "X")]
    pub min_confidence: Option<f32>,
    /// Program run with each incident as JSON on its standard input (absolute path, inside
    /// alerts.exec_dirs; no shell).
    #[arg(long, value_name = "PROGRAM")]
    pub exec: Option<String>,
    /// An argument of the --exec program (repeat for more).
    #[arg(long, value_name = "ARG", requires = "exec")]
    pub exec_arg: Vec<String>,
    /// Also check the footage stored now.
    #[arg(long)]
    pub backfill: bool,
}

/// Arguments of `alerts`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").args(["follow", "since"]).required(true)))]
pub struct AlertsArgs {
    /// Print each new incident as it happens, until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// List the incidents recorded in this past span (30s, 15m, 1h, 2d) or since a UTC time.
    #[arg(long, value_name = "SPAN|TIME", value_parser = parse_since)]
    pub since: Option<i64>,
    /// Only this alert's incidents.
    #[arg(long, value_name = "NAME")]
    pub alert: Option<String>,
}

/// A `--region` that is not four numbers.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a region: give x,y,w,h as fractions of the frame, e.g. 0.5,0,0.5,1")]
pub struct BadRegion(String);

/// `x,y,w,h` as four numbers (their range is checked where they are used).
pub(super) fn parse_region(text: &str) -> Result<[f32; 4], BadRegion> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| BadRegion(text.to_string()))?;
    <[f32; 4]>::try_from(values).map_err(|_| BadRegion(text.to_string()))
}

/// A `--since` that is neither a span nor a time.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a span (30s, 15m, 1h, 2d) or a UTC time (2026-11-27T03:00:00Z)")]
pub struct BadSince(String);

/// `--since` as ms since the epoch: now minus a span, or a UTC time.
fn parse_since(text: &str) -> Result<i64, BadSince> {
    if let Some(t) = crate::clock::parse_iso8601(text) {
        return Ok(t);
    }
    let bad = || BadSince(text.to_string());
    let unit = text.chars().last().ok_or_else(bad)?;
    let ms = match unit {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    let n: f64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(bad());
    }
    Ok(crate::clock::now_ms() - (n * ms as f64) as i64)
}

fn alert_row(a: &AlertInfo) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        a.name.clone(),
        a.text.clone(),
        format!("{:.2}", a.min_confidence),
        a.source.clone().unwrap_or_else(dash),
        a.between.clone().unwrap_or_else(dash),
        a.region
            .map(|r| format!("{},{},{},{}", r[0], r[1], r[2], r[3]))
            .unwrap_or_else(dash),
        if a.exec.is_empty() {
            dash()
        } else {
            a.exec.join(" ")
        },
    ]
}

const ALERT_HEADER: [&str; 7] = [
    "NAME", "TEXT", "MIN_CONF", "SOURCE", "BETWEEN", "REGION", "EXEC",
];

fn incident_row(i: &IncidentInfo) -> Vec<String> {
    vec![
        i.recorded.clone(),
        i.alert.clone(),
        format!("{:.2}", i.confidence),
        format_ms(i.start_ms),
        format_ms(i.end_ms),
        format_ms(i.best_ms),
        i.source.clone(),
    ]
}

const INCIDENT_HEADER: [&str; 7] = ["RECORDED", "ALERT", "CONF", "FROM", "TO", "BEST", "SOURCE"];

/// Runs `alert add|list|remove`.
pub fn run_alert(cli: &Cli, args: &AlertArgs) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    match &args.action {
        AlertAction::Add(a) => {
            let request = AlertAddRequest {
                name: a.name.clone(),
                text: a.text.clone(),
                source: a.source.clone(),
                region: a.region,
                between: a.between.clone(),
                min_confidence: a.min_confidence,
                exec: a
                    .exec
                    .iter()
                    .cloned()
                    .chain(a.exec_arg.iter().cloned())
                    .collect(),
                backfill: a.backfill,
            };
            let v = client.call(&Request::AlertAdd(request))?;
            if cli.json {
                println!("{}", strip_ok(v));
                return Ok(EXIT_OK);
            }
            let r: AlertAddReply = serde_json::from_value(v)?;
            print_table(&ALERT_HEADER, &[alert_row(&r.alert)]);
            if a.backfill {
                println!("backfill: {} incidents", r.backfilled);
            }
        }
        AlertAction::List => {
            let v = client.call(&Request::AlertList)?;
            if cli.json {
                println!("{}", strip_ok(v));
                return Ok(EXIT_OK);
            }
            let r: AlertListReply = serde_json::from_value(v)?;
            if r.alerts.is_empty() {
                println!("no alerts");
            } else {
                let rows: Vec<Vec<String>> = r.alerts.iter().map(alert_row).collect();
                print_table(&ALERT_HEADER, &rows);
            }
        }
        AlertAction::Remove { name } => {
            let r: AlertRemoveReply =
                client.call_as(&Request::AlertRemove(AlertRemoveRequest {
                    name: name.clone(),
                }))?;
            if cli.json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("removed alert {}", r.removed);
            }
        }
    }
    Ok(EXIT_OK)
}

/// Runs `alerts --follow | --since`.
pub fn run_alerts(cli: &Cli, args: &AlertsArgs) -> anyhow::Result<u8> {
    let mut client = connect(cli)?;
    if args.follow {
        use std::io::Write;
        if !cli.json {
            println!("following incidents (Ctrl-C to stop)");
        }
        let mut failed = None;
        client.follow(|v| {
            if args
                .alert
                .as_ref()
                .is_some_and(|a| v["alert"].as_str() != Some(a.as_str()))
            {
                return true;
            }
            let line = if cli.json {
                v.to_string()
            } else {
                match serde_json::from_value::<IncidentInfo>(v) {
                    Ok(i) => incident_row(&i).join("  "),
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                }
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
        })?;
        if let Some(e) = failed {
            bail!("the daemon sent an incident this client cannot read: {e}");
        }
        return Ok(EXIT_OK);
    }
    let since_ms = args.since;
    let v = client
        .call(&Request::AlertsHistory(AlertsHistoryRequest {
            since_ms,
            alert: args.alert.clone(),
        }))
        .context("cannot read the incident history")?;
    if cli.json {
        println!("{}", strip_ok(v));
        return Ok(EXIT_OK);
    }
    let r: AlertsHistoryReply = serde_json::from_value(v)?;
    if r.incidents.is_empty() {
        println!("no incidents");
    } else {
        let rows: Vec<Vec<String>> = r.incidents.iter().map(incident_row).collect();
        print_table(&INCIDENT_HEADER, &rows);
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_spans_parse_or_say_what_is_wrong() {
        assert_eq!(parse_region("0.5,0,0.5,1").unwrap(), [0.5, 0.0, 0.5, 1.0]);
        assert!(parse_region("1,2,3")
            .unwrap_err()
            .to_string()
            .contains("x,y,w,h"));
        assert!(parse_region("a,b,c,d").is_err());
        let now = crate::clock::now_ms();
        let hour_ago = parse_since("1h").unwrap();
        assert!((now - 3_600_000 - hour_ago).abs() < 5_000);
        assert_eq!(
            parse_since("2026-11-27T03:00:00Z").unwrap(),
            crate::clock::parse_iso8601("2026-11-27T03:00:00Z").unwrap()
        );
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("-1h").is_err());
    }
}
