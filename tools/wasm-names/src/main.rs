//! `wasm-names <module.wasm> <glue.js>`: shortens, in place, the names that tie a wasm-bindgen
//! module to its JavaScript glue.
//!
//! wasm-bindgen names every import `__wbg_<what>_<16 hex digits>` under the module
//! `"./<crate>_bg.js"`, and exports its helpers as `__wbindgen_malloc`, `tracker_new`, ...: about
//! 4 KB of names, half of them random hex that no compressor shrinks, each written twice (in the
//! wasm and in the glue). They are private to the pair, so both files get the same short names
//! (`a`, `b`, ... `ba`, ...). `memory` keeps its name: callers may read `exports.memory`.
//!
//! The glue is rewritten token by token, and the step fails rather than guess: every old name
//! must be found where expected and none may remain.

use std::collections::HashMap;
use std::{env, fs, process};

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let [wasm_path, js_path] = args.as_slice() else {
        eprintln!("usage: wasm-names <module.wasm> <glue.js>");
        process::exit(2);
    };
    let result = fs::read(wasm_path)
        .map_err(|e| format!("reading {wasm_path}: {e}"))
        .and_then(|wasm| Ok((wasm, fs::read_to_string(js_path).map_err(|e| format!("reading {js_path}: {e}"))?)))
        .and_then(|(wasm, js)| shorten(&wasm, &js))
        .and_then(|(wasm, js, saved)| {
            fs::write(wasm_path, wasm).map_err(|e| format!("writing {wasm_path}: {e}"))?;
            fs::write(js_path, js).map_err(|e| format!("writing {js_path}: {e}"))?;
            Ok(saved)
        });
    match result {
        Ok(saved) => println!("wasm-names: {saved} bytes of names removed from the wasm"),
        Err(e) => {
            eprintln!("wasm-names: {e}");
            process::exit(1);
        }
    }
}

/// The rewritten wasm and glue, and how many bytes the wasm lost.
pub fn shorten(wasm: &[u8], js: &str) -> Result<(Vec<u8>, String, usize), String> {
    let module = Module::parse(wasm)?;
    let mut names = ShortNames::default();
    let mut import_map = HashMap::new();
    let mut module_map = HashMap::new();
    let mut export_map = HashMap::new();
    let used_exports = glue_exports(js);
    let mut out = wasm[..8].to_vec();
    for section in &module.sections {
        let payload = match section.id {
            IMPORT => {
                let mut r = Reader::new(section.payload);
                let mut w = Vec::new();
                let count = r.u32()?;
                push_u32(&mut w, count);
                for _ in 0..count {
                    let module_name = r.name()?;
                    let field = r.name()?;
                    let desc = r.import_desc()?;
                    let next_module = module_map.len();
                    let short_module: &str = module_map.entry(module_name.to_string()).or_insert_with(|| module_short(next_module));
                    let short = import_map.entry(field.to_string()).or_insert_with(|| names.next()).clone();
                    push_name(&mut w, short_module);
                    push_name(&mut w, &short);
                    w.extend_from_slice(desc);
                }
                r.end()?;
                w
            }
            EXPORT => {
                let mut r = Reader::new(section.payload);
                let mut w = Vec::new();
                let count = r.u32()?;
                push_u32(&mut w, count);
                for _ in 0..count {
                    let name = r.name()?;
                    let kind = r.byte()?;
                    let index = r.u32()?;
                    // Exports the glue does not call (`memory`, test hooks) keep their names: other
                    // code may look them up.
                    let short = if !used_exports.contains(name) {
                        name.to_string()
                    } else {
                        export_map.entry(name.to_string()).or_insert_with(|| names.next()).clone()
                    };
                    push_name(&mut w, &short);
                    w.push(kind);
                    push_u32(&mut w, index);
                }
                r.end()?;
                w
            }
            _ => section.payload.to_vec(),
        };
        out.push(section.id);
        push_u32(&mut out, payload.len() as u32);
        out.extend_from_slice(&payload);
    }
    let js = rewrite_glue(js, &module_map, &import_map, &export_map)?;
    let saved = wasm.len() - out.len();
    Ok((out, js, saved))
}

/// Module names become `"a"`, `"b"`, ...: wasm-bindgen uses one.
fn module_short(index: usize) -> String {
    char::from(b'a' + (index % 26) as u8).to_string()
}

fn rewrite_glue(
    js: &str,
    modules: &HashMap<String, String>,
    imports: &HashMap<String, String>,
    exports: &HashMap<String, String>,
) -> Result<String, String> {
    let mut js = js.to_string();
    for (old, new) in modules {
        let quoted = format!("\"{old}\"");
        if js.matches(&quoted).count() != 1 {
            return Err(format!("expected the import module {quoted} exactly once in the glue"));
        }
        js = js.replace(&quoted, &format!("\"{new}\""));
    }
    let mut out = String::with_capacity(js.len());
    let mut found: HashMap<&str, usize> = HashMap::new();
    let bytes = js.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            let start = i;
            while i < bytes.len() && !is_ident(bytes[i]) {
                i += 1;
            }
            out.push_str(&js[start..i]);
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let token = &js[start..i];
        let after_wasm_dot = js[..start].ends_with("wasm.");
        let replacement = if after_wasm_dot { exports.get(token) } else { imports.get(token) };
        match replacement {
            Some(new) => {
                *found.entry(token).or_default() += 1;
                out.push_str(new);
            }
            None => out.push_str(token),
        }
    }
    for old in imports.keys().chain(exports.keys()) {
        if !found.contains_key(old.as_str()) {
            return Err(format!("{old} is not in the glue where expected"));
        }
    }
    Ok(out)
}

/// The names the glue reads off the wasm's exports (`wasm.<name>`), `memory` aside.
fn glue_exports(js: &str) -> std::collections::HashSet<&str> {
    js.match_indices("wasm.")
        .filter(|(at, _)| *at == 0 || !is_ident(js.as_bytes()[at - 1]))
        .map(|(at, _)| {
            let rest = &js[at + 5..];
            &rest[..rest.bytes().position(|b| !is_ident(b)).unwrap_or(rest.len())]
        })
        .filter(|name| !name.is_empty() && *name != "memory")
        .collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// `a`..`z`, `A`..`Z`, then two letters, ...
#[derive(Default)]
struct ShortNames(usize);

impl ShortNames {
    fn next(&mut self) -> String {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut n = self.0;
        self.0 += 1;
        let mut name = vec![LETTERS[n % LETTERS.len()]];
        n /= LETTERS.len();
        while n > 0 {
            n -= 1;
            name.push(LETTERS[n % LETTERS.len()]);
            n /= LETTERS.len();
        }
        name.reverse();
        String::from_utf8(name).expect("ASCII")
    }
}

const IMPORT: u8 = 2;
const EXPORT: u8 = 7;

struct Section<'a> {
    id: u8,
    payload: &'a [u8],
}

struct Module<'a> {
    sections: Vec<Section<'a>>,
}

impl<'a> Module<'a> {
    fn parse(wasm: &'a [u8]) -> Result<Module<'a>, String> {
        if wasm.len() < 8 || &wasm[..4] != b"\0asm" || wasm[4..8] != [1, 0, 0, 0] {
            return Err("not a wasm module (version 1)".into());
        }
        let mut r = Reader::new(&wasm[8..]);
        let mut sections = Vec::new();
        while !r.done() {
            let id = r.byte()?;
            let len = r.u32()? as usize;
            sections.push(Section { id, payload: r.take(len)? });
        }
        Ok(Module { sections })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
    fn end(&self) -> Result<(), String> {
        if self.done() {
            Ok(())
        } else {
            Err("trailing bytes in a section".into())
        }
    }
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("unexpected end of the module")?;
        self.at += 1;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self.bytes.get(self.at..self.at + n).ok_or("unexpected end of the module")?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let (mut n, mut shift) = (0u64, 0);
        loop {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(n).map_err(|_| "a LEB128 number overflows u32".into());
            }
            shift += 7;
            if shift > 35 {
                return Err("a LEB128 number is too long".into());
            }
        }
    }
    fn name(&mut self) -> Result<&'a str, String> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a name is not UTF-8".into())
    }
    /// The raw bytes of an import's description (kind and type).
    fn import_desc(&mut self) -> Result<&'a [u8], String> {
        let start = self.at;
        match self.byte()? {
            0x00 => drop(self.u32()?),
            0x01 => {
                self.byte()?;
                self.limits()?;
            }
            0x02 => self.limits()?,
            0x03 => {
                self.byte()?;
                self.byte()?;
            }
            0x04 => {
                self.byte()?;
                self.u32()?;
            }
            kind => return Err(format!("unknown import kind {kind:#x}")),
        }
        Ok(&self.bytes[start..self.at])
    }
    fn limits(&mut self) -> Result<(), String> {
        let flags = self.byte()?;
        self.u32()?;
        if flags & 1 == 1 {
            self.u32()?;
        }
        Ok(())
    }
}

fn push_u32(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    push_u32(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing `f` and `g` from `m` and exporting function 0 as `run` and a memory.
    fn module(imports: &[(&str, &str)], exports: &[&str]) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        let mut sec = Vec::new();
        push_u32(&mut sec, imports.len() as u32);
        for (m, f) in imports {
            push_name(&mut sec, m);
            push_name(&mut sec, f);
            sec.extend_from_slice(&[0x00, 0x00]);
        }
        wasm.push(IMPORT);
        push_u32(&mut wasm, sec.len() as u32);
        wasm.extend_from_slice(&sec);
        let mut sec = Vec::new();
        push_u32(&mut sec, exports.len() as u32);
        for (i, e) in exports.iter().enumerate() {
            push_name(&mut sec, e);
            sec.push(if *e == "memory" { 0x02 } else { 0x00 });
            push_u32(&mut sec, i as u32);
        }
        wasm.push(EXPORT);
        push_u32(&mut wasm, sec.len() as u32);
        wasm.extend_from_slice(&sec);
        wasm
    }

    const GLUE: &str = r#"const import0 = { __wbg_log_0123456789abcdef: function(a) { wasm.run_it(a); }, __wbg_now_fedcba9876543210: () => Date.now() };
const imports = { "./x_bg.js": import0 }; wasm.memory.buffer; wasm.run_it(); const run_it = 1;"#;

    #[test]
    fn renames_both_sides_alike() {
        let wasm = module(
            &[("./x_bg.js", "__wbg_log_0123456789abcdef"), ("./x_bg.js", "__wbg_now_fedcba9876543210")],
            &["run_it", "memory", "__unused_hook"],
        );
        let (out, js, saved) = shorten(&wasm, GLUE).unwrap();
        assert!(saved > 40, "{saved}");
        let m = Module::parse(&out).unwrap();
        let imports = m.sections.iter().find(|s| s.id == IMPORT).unwrap();
        let mut r = Reader::new(imports.payload);
        assert_eq!(r.u32().unwrap(), 2);
        assert_eq!((r.name().unwrap(), r.name().unwrap()), ("a", "a"));
        assert_eq!(r.import_desc().unwrap(), &[0, 0]);
        assert_eq!((r.name().unwrap(), r.name().unwrap()), ("a", "b"));
        let exports = m.sections.iter().find(|s| s.id == EXPORT).unwrap();
        let mut r = Reader::new(exports.payload);
        assert_eq!(r.u32().unwrap(), 3);
        let names: Vec<&str> = (0..3)
            .map(|_| {
                let n = r.name().unwrap();
                r.byte().unwrap();
                r.u32().unwrap();
                n
            })
            .collect();
        assert_eq!(names, ["c", "memory", "__unused_hook"]);
        assert_eq!(
            js,
            r#"const import0 = { a: function(a) { wasm.c(a); }, b: () => Date.now() };
const imports = { "a": import0 }; wasm.memory.buffer; wasm.c(); const run_it = 1;"#
        );
    }

    #[test]
    fn refuses_glue_that_does_not_match() {
        let wasm = module(&[("./x_bg.js", "__wbg_missing_0000000000000000")], &[]);
        let e = shorten(&wasm, GLUE).unwrap_err();
        assert!(e.contains("__wbg_missing_0000000000000000"), "{e}");
        assert!(shorten(b"nope", GLUE).is_err());
    }

    #[test]
    fn short_names_are_unique() {
        let mut n = ShortNames::default();
        let all: Vec<String> = (0..3000).map(|_| n.next()).collect();
        let set: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), all.len());
        assert_eq!((&all[0][..], &all[51][..], &all[52][..]), ("a", "Z", "aa"));
    }
}
