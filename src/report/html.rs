//! The HTML page: one self-contained file (inline SVG, inline CSS, no JavaScript, readable
//! printed), tables in the paper's shape.

use std::fmt::Write;

use super::figure::Figure;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table cell: text, bold when it is the best of its column.
pub struct Td {
    pub text: String,
    pub best: bool,
}

impl Td {
    pub fn plain(s: impl Into<String>) -> Td {
        Td {
            text: s.into(),
            best: false,
        }
    }
}

/// An HTML table with a caption.
pub fn table(caption: &str, header: &[String], rows: &[Vec<Td>]) -> String {
    let mut out = String::from("<table>\n");
    if !caption.is_empty() {
        let _ = writeln!(out, "<caption>{}</caption>", esc(caption));
    }
    if header.iter().any(|h| !h.is_empty()) {
        out.push_str("<thead><tr>");
        for h in header {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            if c.best {
                let _ = write!(out, "<td><b>{}</b></td>", esc(&c.text));
            } else {
                let _ = write!(out, "<td>{}</td>", esc(&c.text));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

/// A figure inlined: its SVG, caption and links to its files.
pub fn figure(f: &Figure) -> String {
    format!(
        "<figure>\n{}\n<figcaption>{} (<a href=\"{n}.svg\">svg</a>, <a href=\"{n}.csv\">csv</a>)</figcaption>\n</figure>\n",
        strip_xml_declaration(&f.svg),
        esc(&f.caption),
        n = esc(&f.name)
    )
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// A sentence saying what is missing.
pub fn missing(text: &str) -> String {
    format!("<p class=\"missing\">{}</p>\n", esc(text))
}

/// The whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{t}</title>
<style>
body {{ font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; line-height: 1.4; }}
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ccc; margin-top: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }}
caption {{ caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }}
th, td {{ border-top: 1px solid #999; border-bottom: 1px solid #999; padding: 0.25em 0.7em; text-align: left; }}
th {{ background: #f3f3f3; }}
figure {{ margin: 1.5em 0; page-break-inside: avoid; }} figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: 0.9em; color: #444; }}
.grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }} .grid img {{ max-width: 100%; }}
.pictures figure img {{ max-width: 100%; height: auto; }}
.missing {{ color: #8a5a00; font-style: italic; }}
.error {{ color: #b00; }}
details pre {{ font-size: 0.85em; background: #f7f7f7; padding: 0.5em; }}
@media print {{ a {{ color: inherit; }} details {{ display: block; }} }}
</style>
</head>
<body>
<h1>{t}</h1>
{body}
</body>
</html>
"#,
        t = esc(title)
    )
}

pub use crate::analysis::progress::format_date as date;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escaping() {
        assert_eq!(date(0.0), "1970-01-01 00:00 UTC");
        assert_eq!(date(951_782_400.0 + 3661.0), "2000-02-29 01:01 UTC");
        assert_eq!(date(1_795_761_069.0), "2026-11-27 06:31 UTC");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        let t = table(
            "cap",
            &["k".into(), "v".into()],
            &[vec![
                Td::plain("x"),
                Td {
                    text: "1".into(),
                    best: true,
                },
            ]],
        );
        assert!(t.contains("<caption>cap</caption>") && t.contains("<b>1</b>"));
    }
}
