//! Finds the line of a field path (`analyses.web.metrics[1].judge`) in a
//! config file's text, so semantic errors found after parsing still point
//! at a line. A best-effort walk over indentation: it never fails, it only
//! returns `None` when the field is not written in the file (a default).

/// One step of a field path.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Column of the first key on a line, looking past a list dash.
fn key_col(line: &str) -> usize {
    let t = line.trim_start();
    match t.strip_prefix("- ") {
        Some(rest) => line.len() - rest.trim_start().len(),
        None => indent(line),
    }
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// 1-based line of `path` in YAML `text`.
pub fn yaml_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let segs = segments(path);
    if segs.is_empty() {
        return None;
    }
    // Search window: lines [from, to) belonging to the current node, whose
    // children are indented more than `parent_indent`.
    let mut from = 0;
    let mut to = lines.len();
    let mut parent_indent: isize = -1;
    let mut found = None;
    for seg in segs {
        let mut hit = None;
        match seg {
            Segment::Key(key) => {
                for (i, line) in lines.iter().enumerate().take(to).skip(from) {
                    if !is_content(line) || (key_col(line) as isize) <= parent_indent {
                        continue;
                    }
                    // A key may follow a list dash: "- name: x".
                    let t = line.trim_start().trim_start_matches("- ").trim_start();
                    let k = t.trim_start_matches(['"', '\'']);
                    if k.starts_with(key)
                        && k[key.len()..]
                            .trim_start_matches(['"', '\''])
                            .starts_with(':')
                    {
                        let col = line.len() - t.len();
                        hit = Some((i, col));
                        break;
                    }
                }
            }
            Segment::Index(n) => {
                let mut count = 0;
                let mut dash_indent = None;
                for (i, line) in lines.iter().enumerate().take(to).skip(from) {
                    if !is_content(line) || (indent(line) as isize) < parent_indent.max(0) {
                        continue;
                    }
                    let t = line.trim_start();
                    if t.starts_with("- ") || t == "-" {
                        let d = indent(line);
                        if *dash_indent.get_or_insert(d) == d {
                            if count == n {
                                hit = Some((i, d + 2));
                                break;
                            }
                            count += 1;
                        }
                    }
                }
            }
        }
        // A key inside a flow mapping on the node's own line: `tls: {ca_file: x}`.
        if hit.is_none() {
            if let (Some(l), Segment::Key(key)) = (found, seg) {
                let text: &str = lines[l];
                if let Some(brace) = text.find('{') {
                    if text[brace..].contains(&format!("{key}:")) {
                        return Some(l + 1);
                    }
                }
            }
        }
        let (line, col) = hit?;
        found = Some(line);
        // The node spans until the next line indented at or before its own column.
        let own = match lines[line].trim_start().starts_with("- ") {
            true => indent(lines[line]),
            false => col,
        };
        let mut end = line + 1;
        while end < to {
            if is_content(lines[end]) && indent(lines[end]) <= own {
                break;
            }
            end += 1;
        }
        from = line;
        to = end;
        parent_indent = col as isize - 1;
        // The item's own first key sits on the dash line: keep it searchable.
        if !lines[line].trim_start().starts_with("- ") {
            from = line + 1;
        }
    }
    found.map(|l| l + 1)
}

/// 1-based line of the last key of `path` in TOML `text` (`key =` or `[table]`).
pub fn toml_line(text: &str, path: &str) -> Option<usize> {
    let last = segments(path).into_iter().rev().find_map(|s| match s {
        Segment::Key(k) => Some(k),
        Segment::Index(_) => None,
    })?;
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(&format!("{last} ")) || t.starts_with(&format!("{last}="))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
listen: 127.0.0.1:8080
analyses:
  web:
    thresholds: {pass: 90, marginal: 95}
    metrics:
      - name: latency
        kind: gauge
        judge: welch
      # a comment
      - name: errors
        kind: counter
        judge: mann-whitney
  other:
    metrics: []
";

    #[test]
    fn finds_nested_keys_and_list_items() {
        assert_eq!(yaml_line(YAML, "listen"), Some(1));
        assert_eq!(yaml_line(YAML, "analyses.web.thresholds"), Some(4));
        assert_eq!(yaml_line(YAML, "analyses.web.metrics[0].judge"), Some(8));
        assert_eq!(yaml_line(YAML, "analyses.web.metrics[1]"), Some(10));
        assert_eq!(yaml_line(YAML, "analyses.web.metrics[1].name"), Some(10));
        assert_eq!(yaml_line(YAML, "analyses.web.metrics[1].judge"), Some(12));
        assert_eq!(yaml_line(YAML, "analyses.other.metrics"), Some(14));
    }

    #[test]
    fn absent_fields_have_no_line() {
        assert_eq!(yaml_line(YAML, "analyses.web.alpha"), None);
        assert_eq!(yaml_line(YAML, "analyses.web.metrics[5]"), None);
        assert_eq!(yaml_line(YAML, ""), None);
    }

    #[test]
    fn toml_keys() {
        let t = "listen = \"x\"\n[prometheus]\nurl = \"ftp://x\"\n";
        assert_eq!(toml_line(t, "prometheus.url"), Some(3));
    }
}
