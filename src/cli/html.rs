//! The self-contained HTML page of `search --html FILE`: one card per clip with its best
//! frame inline (a `data:` URI fetched with the `frame` op), source, times and score. No
//! script, no external resource: the file can be mailed or archived as it is.

use jiff::tz::TimeZone;

use crate::client::Client;
use crate::protocol::{Clip, FrameReply, FrameRequest, Region, Request};

use super::format_ms;
use super::when::format_iso;

/// Width of the thumbnails, pixels.
pub const THUMB_WIDTH: u32 = 320;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}\
h1{font-size:1.3em}main{display:flex;flex-wrap:wrap;gap:1em}\
article.clip{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em;width:330px}\
article.clip img{display:block;width:320px;height:auto;background:#000}\
.frame{position:relative;width:320px}\
.region{position:absolute;box-sizing:border-box;border:2px solid #ffe600;box-shadow:0 0 0 1px #000}\
.missing{width:320px;height:180px;display:flex;align-items:center;justify-content:center;background:#eee;color:#a00}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.1em .6em;margin:.5em 0 0;font-size:.9em}\
dt{color:#666}dd{margin:0;word-break:break-all}";

/// Builds the page for `clips` (best first). Each thumbnail is asked of the daemon with the
/// `frame` op; one that cannot be had (file gone or changed) is shown as a note instead, and
/// a warning goes to stderr. Recording times show in `tz`, as the tables do (the local zone,
/// or UTC under `--utc`), each with its UTC instant in the `<time datetime>` attribute.
pub fn results_page(client: &mut Client, query: &str, clips: &[Clip], tz: &TimeZone) -> String {
    use base64::Engine;
    let mut cards = String::new();
    for (i, clip) in clips.iter().enumerate() {
        let frame = client.call_as::<FrameReply>(&Request::Frame(FrameRequest {
            source: clip.source.clone(),
            at_ms: clip.best_ms,
            max_width: Some(THUMB_WIDTH),
            node: clip.node.clone(),
        }));
        let picture = match frame {
            Ok(f)
                if base64::engine::general_purpose::STANDARD
                    .decode(&f.jpeg)
                    .is_ok() =>
            {
                // The box of the clip's region, placed over the picture in percent.
                let region = clip
                    .region
                    .map(|r| {
                        format!(
                            "<div class=\"region\" style=\"left:{:.2}%;top:{:.2}%;width:{:.2}%;height:{:.2}%\"></div>",
                            r.x * 100.0,
                            r.y * 100.0,
                            r.w * 100.0,
                            r.h * 100.0
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "<div class=\"frame\"><img src=\"data:image/jpeg;base64,{}\" width=\"{}\" height=\"{}\" alt=\"frame at {}\">{region}</div>",
                    f.jpeg,
                    f.width,
                    f.height,
                    format_ms(f.at_ms)
                )
            }
            Ok(_) => "<div class=\"missing\">no thumbnail: bad image data</div>".to_string(),
            Err(e) => {
                eprintln!(
                    "frameseek: no thumbnail for {} at {}: {e}",
                    clip.source,
                    format_ms(clip.best_ms)
                );
                format!(
                    "<div class=\"missing\">no thumbnail: {}</div>",
                    escape(&e.to_string())
                )
            }
        };
        let recorded = clip
            .start_wall
            .as_deref()
            .map(|w| format!("<dt>recorded</dt><dd>{}</dd>", recorded_cell(w, tz)))
            .unwrap_or_default();
        cards.push_str(&format!(
            "<article class=\"clip\" data-rank=\"{rank}\" data-score=\"{score:.4}\">{picture}<dl>\
<dt>#</dt><dd>{rank}</dd><dt>score</dt><dd>{score:.3}</dd>\
<dt>source</dt><dd>{source}</dd><dt>from</dt><dd>{from}</dd><dt>to</dt><dd>{to}</dd>\
<dt>best</dt><dd>{best}</dd><dt>region</dt><dd>{region}</dd>{recorded}</dl></article>\n",
            rank = i + 1,
            score = clip.score,
            source = escape(&clip.source),
            from = format_ms(clip.start_ms),
            to = format_ms(clip.end_ms),
            best = format_ms(clip.best_ms),
            region = region_cell(clip.region.as_ref()),
        ));
    }
    if clips.is_empty() {
        cards.push_str("<p>no matching footage</p>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>frameseek: {q}</title><style>{STYLE}</style></head>\n<body><h1>frameseek: {q}</h1>\
<p>{n} clips, best first; times in {zone}.</p>\n<main>\n{cards}</main></body></html>\n",
        q = escape(query),
        n = clips.len(),
        zone = escape(&zone_name(tz)),
    )
}

/// A recording time for the page: local to `tz` (zone abbreviation included) in a `<time>`
/// element whose `datetime` keeps the reply's UTC ISO 8601 text.
fn recorded_cell(iso_utc: &str, tz: &TimeZone) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        escape(iso_utc),
        escape(&format_iso(iso_utc, tz))
    )
}

/// The zone's name for the page: its IANA name (`Europe/Paris`), else `UTC` or its offset
/// now (a zone from a POSIX TZ string has no name).
fn zone_name(tz: &TimeZone) -> String {
    match tz.iana_name() {
        Some(name) => name.to_string(),
        None if *tz == TimeZone::UTC => "UTC".to_string(),
        None => format!("UTC{}", tz.to_offset(jiff::Timestamp::now())),
    }
}

/// A clip's region for the table and the page: `x,y+wxh` (corner and size, fractions of
/// the frame), `-` when unknown.
pub(super) fn region_cell(region: Option<&Region>) -> String {
    region.map_or_else(
        || "-".into(),
        |r| format!("{:.2},{:.2}+{:.2}x{:.2}", r.x, r.y, r.w, r.h),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_times_show_in_the_display_zone_and_keep_the_utc_instant() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(
            recorded_cell("2026-11-27T02:00:00.000Z", &paris),
            "<time datetime=\"2026-11-27T02:00:00.000Z\">2026-11-27 03:00:00 CET</time>"
        );
        assert_eq!(
            recorded_cell("2026-11-27T02:00:00.000Z", &TimeZone::UTC),
            "<time datetime=\"2026-11-27T02:00:00.000Z\">2026-11-27 02:00:00 UTC</time>"
        );
        assert_eq!(zone_name(&paris), "Europe/Paris");
        assert_eq!(zone_name(&TimeZone::UTC), "UTC");
        let fixed = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(zone_name(&fixed), "UTC-05");
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
