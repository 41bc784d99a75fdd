//! Escaping for HTML, inline SVG and XML (JUnit). Every string that reaches a markup report from
//! a spec, a cluster or a backend (experiment names, labels, pod names, error messages) goes
//! through here, so a hostile name cannot inject markup or script, nor break a JUnit file.

use std::borrow::Cow;

/// Escapes text for HTML, SVG and XML content and quoted attribute values alike.
///
/// Control characters other than tab and newline are dropped: they are invalid in XML (inline
/// SVG) and never meaningful in a report.
pub fn markup(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || is_dropped(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_dropped(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_dropped(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            markup("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn plain_text_is_borrowed_and_control_characters_dropped() {
        assert!(matches!(markup("web-a"), Cow::Borrowed("web-a")));
        assert_eq!(markup("a\u{1}b\u{7f}c\nd"), "abc\nd");
    }
}
