//! MediaWiki XML dumps (`pages-articles.xml`): one document per page, its
//! wikitext as the text and its title as the id. Redirect pages are skipped.
//!
//! Dumps put `<title>`, the `<text ...>` opening tag and `</text>` each at the
//! start or end of a line, so a line-by-line scan is enough; no XML parser.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{Document, Record, SkipReason, Skipped};

pub struct MediaWikiPages<R> {
    path: PathBuf,
    reader: BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> MediaWikiPages<R> {
    pub fn new(path: &Path, reader: R) -> Self {
        MediaWikiPages {
            path: path.into(),
            reader: BufReader::with_capacity(1 << 20, reader),
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn skipped(&self, reason: SkipReason, line: u64, detail: String) -> Record {
        Err(Skipped {
            reason,
            file: self.path.clone(),
            line,
            detail,
        })
    }

    /// The next line without its newline, or `None` at the end.
    fn next_line(&mut self) -> Option<std::io::Result<String>> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                Some(Ok(String::from_utf8_lossy(&self.buf).into_owned()))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R: Read> Iterator for MediaWikiPages<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut title = String::new();
        let mut text: Option<String> = None;
        let mut in_text = false;
        let mut page_line = 0;
        while !self.done {
            let line = match self.next_line() {
                None => {
                    self.done = true;
                    break;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(self.skipped(SkipReason::CorruptStream, self.line, e.to_string()));
                }
                Some(Ok(line)) => line,
            };
            if in_text {
                let body = text.get_or_insert_with(String::new);
                body.push('\n');
                match line.find("</text>") {
                    Some(end) => {
                        body.push_str(&line[..end]);
                        in_text = false;
                    }
                    None => body.push_str(&line),
                }
                continue;
            }
            let trimmed = line.trim_start();
            if trimmed.starts_with("<page>") {
                title.clear();
                text = None;
                page_line = self.line;
            } else if let Some(rest) = trimmed.strip_prefix("<title>") {
                title = unescape(rest.trim_end().trim_end_matches("</title>"));
            } else if trimmed.starts_with("<text") {
                let Some(open_end) = trimmed.find('>') else {
                    continue;
                };
                if trimmed[..open_end].ends_with('/') {
                    text = Some(String::new());
                    continue;
                }
                let after = &trimmed[open_end + 1..];
                match after.find("</text>") {
                    Some(end) => text = Some(after[..end].to_string()),
                    None => {
                        text = Some(after.to_string());
                        in_text = true;
                    }
                }
            } else if trimmed.starts_with("</page>") {
                let body = unescape(&text.take().unwrap_or_default());
                if body
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("#redirect")
                {
                    return Some(self.skipped(
                        SkipReason::Redirect,
                        page_line,
                        format!("{title:?} redirects"),
                    ));
                }
                if body.trim().is_empty() {
                    return Some(self.skipped(
                        SkipReason::EmptyDocument,
                        page_line,
                        format!("{title:?} has no text"),
                    ));
                }
                return Some(Ok(Document {
                    id: title.clone(),
                    text: body,
                    file_of: None,
                }));
            }
        }
        None
    }
}

/// XML's five entities and numeric character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&i| i <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pages_and_skips_redirects() {
        let xml = "<mediawiki>\n  <page>\n    <title>A &amp; B</title>\n    <revision>\n      <text xml:space=\"preserve\">First line\n'''bold''' &lt;ref&gt;x&lt;/ref&gt; &#233;</text>\n    </revision>\n  </page>\n  <page>\n    <title>Old</title>\n    <text>#REDIRECT [[A]]</text>\n  </page>\n  <page>\n    <title>Empty</title>\n    <text />\n  </page>\n</mediawiki>\n";
        let pages: Vec<Record> = MediaWikiPages::new(Path::new("w.xml"), xml.as_bytes()).collect();
        assert_eq!(pages.len(), 3);
        let doc = pages[0].as_ref().unwrap();
        assert_eq!(doc.id, "A & B");
        assert_eq!(doc.text, "First line\n'''bold''' <ref>x</ref> é");
        let redirect = pages[1].as_ref().unwrap_err();
        assert_eq!((redirect.reason, redirect.line), (SkipReason::Redirect, 9));
        assert_eq!(
            pages[2].as_ref().unwrap_err().reason,
            SkipReason::EmptyDocument
        );
    }
}
