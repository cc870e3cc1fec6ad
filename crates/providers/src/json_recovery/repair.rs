//! Repairs made to the whole answer before it is split into candidate spans, and the split.

/// Full-width separators Chinese keyboards type (`：` `，`) and ideographic brackets, replaced by
/// their ASCII forms outside of strings. Inside a string (straight or curly quotes) they are
/// content and are kept.
pub(super) fn ascii_separators(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(close) = in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == close => in_string = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = Some('"');
                out.push(c);
            }
            '“' => {
                in_string = Some('”');
                out.push(c);
            }
            '：' => out.push(':'),
            '，' => out.push(','),
            '｛' => out.push('{'),
            '｝' => out.push('}'),
            '［' => out.push('['),
            '］' => out.push(']'),
            _ => out.push(c),
        }
    }
    out
}

/// Where the balanced JSON value starting at `start` ends (exclusive), or `None` if it is cut off.
fn balanced_end(text: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(start + i + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    None
}

/// The candidate JSON texts of `text`, in order: its top-level bracketed spans (a value nested in
/// an earlier span is part of that span; a span that never closes runs to the end). Objects
/// separated only by commas (`{…},\n{…},\n{…}`, a list whose brackets the model left out) are
/// offered first as one array, then one by one.
pub(super) fn candidate_spans(text: &str, max: usize) -> Vec<String> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while spans.len() < max {
        let Some(start) = text[from..].find(['{', '[']).map(|i| from + i) else {
            break;
        };
        let end = balanced_end(text, start).unwrap_or(text.len());
        spans.push((start, end));
        from = end;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < spans.len() {
        let mut j = i;
        while j + 1 < spans.len()
            && text[spans[j].0..].starts_with('{')
            && text[spans[j + 1].0..].starts_with('{')
            && text[spans[j].1..spans[j + 1].0]
                .chars()
                .all(|c| c == ',' || c.is_whitespace())
            && text[spans[j].1..spans[j + 1].0].contains(',')
        {
            j += 1;
        }
        if j > i {
            let run = text[spans[i].0..spans[j].1].trim_end_matches([',', ' ', '\n', '\r', '\t']);
            out.push(format!("[{run}]"));
        }
        i = j + 1;
    }
    out.extend(spans.iter().map(|(s, e)| text[*s..*e].to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_outside_strings_only() {
        assert_eq!(
            ascii_separators("{\"name\"：\"李雷，韩梅梅\"，\"age\"：3}"),
            "{\"name\":\"李雷，韩梅梅\",\"age\":3}"
        );
        assert_eq!(ascii_separators("{“a”：“b，c”}"), "{“a”:“b，c”}");
    }

    #[test]
    fn comma_separated_objects_are_one_candidate_list() {
        let spans = candidate_spans("{\"a\":1},\n{\"a\":2},\n{\"a\":3}", 32);
        assert_eq!(spans[0], "[{\"a\":1},\n{\"a\":2},\n{\"a\":3}]");
        let apart = candidate_spans("A: {\"a\":1}\nB: {\"b\":2}", 32);
        assert_eq!(apart, vec!["{\"a\":1}", "{\"b\":2}"]);
    }
}
