//! MediaWiki XML dumps (`pages-articles.xml`): one document per page, its
//! wikitext as the text and its title as the id.
//!
//! Read with a streaming XML reader (quick-xml) that checks that every end tag
//! closes the element it should, so an unclosed `<text>` cannot swallow the
//! pages after it. Entities are never expanded beyond XML's five predefined
//! ones and character references (a DTD's entities stay as written, so a
//! dump cannot grow by entity expansion). Every page that is not emitted is
//! counted by reason: `redirect`, `empty_document`, `truncated_page` (the
//! file ends inside it). A file that is not well-formed XML is one
//! `malformed_xml` record naming the line and byte where reading stopped;
//! the tokenize stage fails on it.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesRef, Event};

use super::{Document, Record, SkipReason, Skipped};

pub struct MediaWikiPages<R: Read> {
    path: PathBuf,
    reader: quick_xml::Reader<BufReader<R>>,
    buf: Vec<u8>,
    /// Newlines before the current event, for the 1-based line of a page.
    newlines: u64,
    done: bool,
}

/// Which field of a page the text being read belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Title,
    Text,
}

/// The page being read.
#[derive(Default)]
struct Page {
    line: u64,
    title: String,
    text: Option<String>,
    field: Option<Field>,
}

impl Page {
    fn push(&mut self, s: &str) {
        match self.field {
            Some(Field::Title) => self.title.push_str(s),
            Some(Field::Text) => self.text.get_or_insert_with(String::new).push_str(s),
            None => {}
        }
    }
}

impl<R: Read> MediaWikiPages<R> {
    pub fn new(path: &Path, reader: R) -> Self {
        let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 20, reader));
        reader.config_mut().check_end_names = true;
        MediaWikiPages {
            path: path.into(),
            reader,
            buf: Vec::new(),
            newlines: 0,
            done: false,
        }
    }

    fn skipped(&self, reason: SkipReason, line: u64, detail: String) -> Record {
        Err(Skipped::new(reason, &self.path, line, detail))
    }

    /// A finished page: the document, or why it is skipped.
    fn finish(&self, page: Page) -> Record {
        let Page {
            line, title, text, ..
        } = page;
        let body = text.unwrap_or_default();
        if body
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("#redirect")
        {
            return self.skipped(SkipReason::Redirect, line, format!("{title:?} redirects"));
        }
        if body.trim().is_empty() {
            return self.skipped(
                SkipReason::EmptyDocument,
                line,
                format!("{title:?} has no text"),
            );
        }
        Ok(Document {
            id: title,
            text: body,
            file_of: None,
        })
    }
}

/// A reference's text: the predefined entities and character references
/// resolved, any other entity kept as written (never expanded).
fn reference(r: &BytesRef<'_>) -> String {
    let resolved = match &**r {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => r.resolve_char_ref().ok().flatten(),
    };
    resolved.map_or_else(|| format!("&{};", &**r), String::from)
}

impl<R: Read> Iterator for MediaWikiPages<R> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut page: Option<Page> = None;
        while !self.done {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(event) => event,
                Err(e) => {
                    self.done = true;
                    let detail = format!(
                        "not well-formed XML at line {}, byte {}: {e}",
                        self.newlines + 1,
                        self.reader.error_position()
                    );
                    let line = self.newlines + 1;
                    return Some(self.skipped(SkipReason::MalformedXml, line, detail));
                }
            };
            let line = self.newlines + 1;
            self.newlines += event.bytes().filter(|&b| b == b'\n').count() as u64;
            match event {
                Event::Start(e) => match (e.name().as_ref(), &mut page) {
                    ("page", None) => {
                        page = Some(Page {
                            line,
                            ..Page::default()
                        })
                    }
                    ("title", Some(p)) => p.field = Some(Field::Title),
                    ("text", Some(p)) => {
                        p.field = Some(Field::Text);
                        p.text.get_or_insert_with(String::new);
                    }
                    _ => {}
                },
                Event::Empty(e) => {
                    if let ("text", Some(p)) = (e.name().as_ref(), &mut page) {
                        p.text.get_or_insert_with(String::new);
                    }
                }
                Event::End(e) => match (e.name().as_ref(), page.take()) {
                    ("page", Some(p)) => return Some(self.finish(p)),
                    ("title" | "text", Some(mut p)) => {
                        p.field = None;
                        page = Some(p);
                    }
                    (_, p) => page = p,
                },
                Event::Text(t) => {
                    if let Some(p) = &mut page {
                        p.push(&t.xml10_content());
                    }
                }
                Event::CData(t) => {
                    if let Some(p) = &mut page {
                        p.push(&t);
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(p) = &mut page {
                        p.push(&reference(&r));
                    }
                }
                Event::Eof => {
                    self.done = true;
                    if let Some(p) = page.take() {
                        return Some(self.skipped(
                            SkipReason::TruncatedPage,
                            p.line,
                            format!("{:?}: the file ends inside the page", p.title),
                        ));
                    }
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> Vec<Record> {
        MediaWikiPages::new(Path::new("w.xml"), xml.as_bytes()).collect()
    }

    fn reasons(records: &[Record]) -> Vec<(Option<SkipReason>, u64)> {
        records
            .iter()
            .map(|r| match r {
                Ok(_) => (None, 0),
                Err(s) => (Some(s.reason), s.line),
            })
            .collect()
    }

    #[test]
    fn reads_pages_and_skips_redirects() {
        let xml = "<mediawiki>\n  <page>\n    <title>A &amp; B</title>\n    <revision>\n      <text xml:space=\"preserve\">First line\r\n'''bold''' &lt;ref&gt;x&lt;/ref&gt; &#233; &nbsp;</text>\n    </revision>\n  </page>\n  <page>\n    <title>Old</title>\n    <text>#REDIRECT [[A]]</text>\n  </page>\n  <page>\n    <title>Empty</title>\n    <text />\n  </page>\n</mediawiki>\n";
        let pages = read(xml);
        assert_eq!(pages.len(), 3);
        let doc = pages[0].as_ref().unwrap();
        assert_eq!(doc.id, "A & B");
        // Other entities are never expanded: they stay as written.
        assert_eq!(doc.text, "First line\n'''bold''' <ref>x</ref> é &nbsp;");
        let redirect = pages[1].as_ref().unwrap_err();
        assert_eq!((redirect.reason, redirect.line), (SkipReason::Redirect, 9));
        assert_eq!(
            pages[2].as_ref().unwrap_err().reason,
            SkipReason::EmptyDocument
        );
    }

    #[test]
    fn a_page_cut_off_is_counted_and_an_unclosed_text_is_malformed() {
        let page = |t: &str| {
            format!("  <page>\n    <title>{t}</title>\n    <text>{t} text</text>\n  </page>\n")
        };
        // The file ends inside the second page's text (it was dropped silently).
        let cut = format!(
            "<mediawiki>\n{}  <page>\n    <title>B</title>\n    <text>B te",
            page("A")
        );
        assert_eq!(
            reasons(&read(&cut)),
            [(None, 0), (Some(SkipReason::TruncatedPage), 6)]
        );
        // An unclosed <text> swallowed the pages after it into its text.
        let unclosed = format!(
            "<mediawiki>\n  <page>\n    <title>A</title>\n    <text>A text\n  </page>\n{}</mediawiki>\n",
            page("B")
        );
        let records = read(&unclosed);
        assert_eq!(reasons(&records), [(Some(SkipReason::MalformedXml), 5)]);
        let detail = &records[0].as_ref().unwrap_err().detail;
        assert!(
            detail.starts_with("not well-formed XML at line 5, byte "),
            "{detail}"
        );
        // Not XML at all: one malformed_xml record (it gave 0 documents silently).
        let records = read("<mediawiki><page><title>A</title></pag></mediawiki>");
        assert_eq!(reasons(&records), [(Some(SkipReason::MalformedXml), 1)]);
    }
}
