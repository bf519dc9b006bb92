//! The subset of Lua that Prosody's file storage writes (its `util.serialization`):
//! `return <value>;` in `.dat` files and `item(<value>);` lines in `.list` files, where a
//! value is a string, a number, a boolean, nil or a table constructor. Nothing is run.

/// A Lua value as Prosody serialises it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Number(f64),
    /// Lua strings are bytes; Prosody's are UTF-8 (non-ASCII bytes written as `\ddd`).
    Str(String),
    /// Keys in the order written; positional values get the keys 1, 2, 3…
    Table(Vec<(Value, Value)>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(Value, Value)] {
        match self {
            Value::Table(t) => t,
            _ => &[],
        }
    }

    /// The value under the string key `key`, if this is a table that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries()
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The positional values (keys 1, 2, 3… in order).
    pub fn array(&self) -> impl Iterator<Item = &Value> {
        let mut next = 1.0;
        let mut items: Vec<(f64, &Value)> = self
            .entries()
            .iter()
            .filter_map(|(k, v)| k.as_number().map(|n| (n, v)))
            .collect();
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        items.into_iter().filter_map(move |(n, v)| {
            let at = n == next;
            next += 1.0;
            at.then_some(v)
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("at byte {at}: {reason}")]
pub struct LuaError {
    pub at: usize,
    pub reason: String,
}

/// A `.dat` file: `return <value>;`.
pub fn parse_return(text: &str) -> Result<Value, LuaError> {
    let mut p = Parser::new(text);
    p.skip_space();
    p.keyword("return")?;
    let value = p.value()?;
    p.skip_space();
    p.eat(b';');
    p.end()?;
    Ok(value)
}

/// A `.list` file: `item(<value>);` repeated.
pub fn parse_items(text: &str) -> Result<Vec<Value>, LuaError> {
    let mut p = Parser::new(text);
    let mut items = Vec::new();
    loop {
        p.skip_space();
        if p.at_end() {
            return Ok(items);
        }
        p.keyword("item")?;
        p.expect(b'(')?;
        items.push(p.value()?);
        p.expect(b')')?;
        p.skip_space();
        p.eat(b';');
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, LuaError> {
        Err(LuaError {
            at: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn end(&mut self) -> Result<(), LuaError> {
        self.skip_space();
        match self.at_end() {
            true => Ok(()),
            false => self.fail("unexpected text after the value"),
        }
    }

    /// Whitespace and `--` comments.
    fn skip_space(&mut self) {
        loop {
            while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
                self.pos += 1;
            }
            if self.bytes[self.pos.min(self.bytes.len())..].starts_with(b"--") {
                while self.peek().is_some_and(|b| b != b'\n') {
                    self.pos += 1;
                }
            } else {
                return;
            }
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), LuaError> {
        match self.eat(byte) {
            true => Ok(()),
            false => self.fail(format!("expected {:?}", byte as char)),
        }
    }

    fn name(&mut self) -> Option<&'a str> {
        self.skip_space();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        match self.pos > start && !self.bytes[start].is_ascii_digit() {
            true => std::str::from_utf8(&self.bytes[start..self.pos]).ok(),
            false => {
                self.pos = start;
                None
            }
        }
    }

    fn keyword(&mut self, word: &str) -> Result<(), LuaError> {
        match self.name() {
            Some(w) if w == word => Ok(()),
            _ => self.fail(format!("expected `{word}`")),
        }
    }

    fn value(&mut self) -> Result<Value, LuaError> {
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.table(),
            Some(b'"' | b'\'') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9' | b'.') => self.number(),
            _ => match self.name() {
                Some("nil") => Ok(Value::Nil),
                Some("true") => Ok(Value::Bool(true)),
                Some("false") => Ok(Value::Bool(false)),
                _ => self.fail("expected a value"),
            },
        }
    }

    fn table(&mut self) -> Result<Value, LuaError> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        let mut next_index = 1.0;
        loop {
            if self.eat(b'}') {
                return Ok(Value::Table(entries));
            }
            let start = self.pos;
            let (key, value) = if self.eat(b'[') {
                let key = self.value()?;
                self.expect(b']')?;
                self.expect(b'=')?;
                (key, self.value()?)
            } else if let Some(name) = self.name() {
                if self.eat(b'=') {
                    (Value::Str(name.to_owned()), self.value()?)
                } else {
                    // `true`, `nil`… as a positional value.
                    self.pos = start;
                    let key = Value::Number(next_index);
                    next_index += 1.0;
                    (key, self.value()?)
                }
            } else {
                let key = Value::Number(next_index);
                next_index += 1.0;
                (key, self.value()?)
            };
            entries.push((key, value));
            if !self.eat(b';') && !self.eat(b',') {
                self.expect(b'}')?;
                return Ok(Value::Table(entries));
            }
        }
    }

    fn number(&mut self) -> Result<Value, LuaError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16).ok().map(|n| n as f64),
            None => text.parse::<f64>().ok(),
        };
        match parsed {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.pos = start;
                self.fail(format!("not a number: {text:?}"))
            }
        }
    }

    /// A quoted string with Lua's escapes (§3.1 of the Lua 5.x manuals).
    fn string(&mut self) -> Result<String, LuaError> {
        let quote = self.bytes[self.pos];
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return self.fail("unterminated string");
            };
            self.pos += 1;
            match b {
                _ if b == quote => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return self.fail("unterminated string");
                    };
                    self.pos += 1;
                    match e {
                        b'n' | b'\n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'\\' | b'"' | b'\'' => out.push(e),
                        b'z' => {
                            while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
                                self.pos += 1;
                            }
                        }
                        b'x' => {
                            let hex = self.bytes.get(self.pos..self.pos + 2).unwrap_or_default();
                            let byte = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            match byte {
                                Some(byte) => out.push(byte),
                                None => return self.fail("bad \\x escape"),
                            }
                            self.pos += 2;
                        }
                        b'0'..=b'9' => {
                            let mut n = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'9') => {
                                        n = n * 10 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            match u8::try_from(n) {
                                Ok(byte) => out.push(byte),
                                Err(_) => return self.fail("decimal escape above 255"),
                            }
                        }
                        _ => return self.fail(format!("unknown escape \\{}", e as char)),
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).or_else(|_| self.fail("a string that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_prosody_writes() {
        let text = "return {\n\t[\"salt\"] = \"84e4\";\n\t[\"iteration_count\"] = 10000;\n\
                    \t[false] = { version = 2; pending = {} };\n\
                    \t[\"caf\\195\\169\\n\\\"x\\\"\"] = true;\n};\n";
        let v = parse_return(text).unwrap();
        assert_eq!(v.get("salt").and_then(Value::as_str), Some("84e4"));
        assert_eq!(
            v.get("iteration_count").and_then(Value::as_number),
            Some(10000.0)
        );
        assert_eq!(v.get("café\n\"x\""), Some(&Value::Bool(true)));
        let meta = &v.entries()[2];
        assert_eq!(meta.0, Value::Bool(false));
        assert_eq!(meta.1.get("version").and_then(Value::as_number), Some(2.0));
    }

    #[test]
    fn reads_list_items_and_positional_values() {
        let text = "item({ name = \"message\"; attr = { to = \"a@b\" }; \"hi\"; { name = \"body\" }; when = 1.5e9; });\n\
                    item({[1] = \"x\", [2] = \"y\"});\n";
        let items = parse_items(text).unwrap();
        assert_eq!(items.len(), 2);
        let texts: Vec<_> = items[0].array().collect();
        assert_eq!(texts[0], &Value::Str("hi".into()));
        assert_eq!(texts[1].get("name").and_then(Value::as_str), Some("body"));
        assert_eq!(items[0].get("when").and_then(Value::as_number), Some(1.5e9));
        assert_eq!(items[1].array().count(), 2);
    }

    #[test]
    fn refuses_what_is_not_data() {
        assert!(parse_return("return os.execute('x')").is_err());
        assert!(parse_return("return { a = 1 } junk").is_err());
        assert!(parse_return("return \"open").is_err());
        assert!(parse_items("print(1)").is_err());
    }
}
