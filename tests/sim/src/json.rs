//! An ordered JSON value rendered the way PHP renders it: `json_encode` for
//! JSON and the OCS `BaseResponse::toXML` walk for XML. Key order matters for
//! byte-level likeness with the fixtures, hence no map type here.

use std::fmt::Write as _;

use crate::encode::{php_json_string, xml_text};

#[derive(Clone, Debug, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

pub fn obj<const N: usize>(fields: [(&str, J); N]) -> J {
    J::Obj(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

pub fn s(v: &str) -> J {
    J::Str(v.to_string())
}

pub fn strs(v: &[&str]) -> J {
    J::Arr(v.iter().map(|x| s(x)).collect())
}

impl J {
    /// PHP's `$a[$k] = $v`: replaces in place, or appends a new key.
    pub fn set(&mut self, key: &str, value: J) {
        if let J::Obj(fields) = self {
            match fields.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key.to_string(), value)),
            }
        }
    }

    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Str(v) => php_json_string(out, v),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            // PHP writes an empty array as `[]` whether it was meant as a list or a map.
            J::Obj(fields) if fields.is_empty() => out.push_str("[]"),
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    php_json_string(out, k);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// The OCS XML document: XMLWriter with one-space indentation, list items
    /// and numeric keys as `<element>`, null as an empty element, booleans as
    /// PHP casts them to strings ("1" and "").
    pub fn to_ocs_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\"?>\n<ocs>\n");
        if let J::Obj(fields) = self {
            for (k, v) in fields {
                write_xml(&mut out, k, v, 1);
            }
        }
        out.push_str("</ocs>\n");
        out
    }
}

fn valid_name(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c))
}

fn write_xml(out: &mut String, key: &str, v: &J, depth: usize) {
    let name = if key.chars().all(|c| c.is_ascii_digit()) {
        "element"
    } else {
        key
    };
    if !valid_name(name) {
        return;
    }
    let indent = " ".repeat(depth);
    let children: Vec<(String, &J)> = match v {
        J::Arr(items) => items.iter().map(|i| ("element".to_string(), i)).collect(),
        J::Obj(fields) => fields.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => {
            let text = match v {
                J::Null => None,
                J::Bool(true) => Some("1".to_string()),
                J::Bool(false) => Some(String::new()),
                J::Int(i) => Some(i.to_string()),
                J::Str(t) => Some(t.clone()),
                J::Arr(_) | J::Obj(_) => unreachable!("handled above"),
            };
            match text {
                None => {
                    let _ = writeln!(out, "{indent}<{name}/>");
                }
                Some(t) => {
                    let _ = write!(out, "{indent}<{name}>");
                    xml_text(out, &t);
                    let _ = writeln!(out, "</{name}>");
                }
            }
            return;
        }
    };
    if children.is_empty() {
        let _ = writeln!(out, "{indent}<{name}/>");
        return;
    }
    let _ = writeln!(out, "{indent}<{name}>");
    for (k, child) in children {
        write_xml(out, &k, child, depth + 1);
    }
    let _ = writeln!(out, "{indent}</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_php() {
        let v = obj([
            ("a", J::Arr(vec![])),
            ("b", J::Null),
            ("c", s("x/y")),
            ("d", J::Obj(vec![])),
        ]);
        assert_eq!(v.to_json(), r#"{"a":[],"b":null,"c":"x\/y","d":[]}"#);
    }

    #[test]
    fn xml_like_ocs() {
        let v = obj([
            (
                "meta",
                obj([("status", s("ok")), ("statuscode", J::Int(200))]),
            ),
            ("data", J::Arr(vec![s("a"), J::Arr(vec![])])),
        ]);
        assert_eq!(
            v.to_ocs_xml(),
            "<?xml version=\"1.0\"?>\n<ocs>\n <meta>\n  <status>ok</status>\n  <statuscode>200</statuscode>\n </meta>\n <data>\n  <element>a</element>\n  <element/>\n </data>\n</ocs>\n"
        );
    }
}
