// A wasm module's binary format, for the build's and the size report's scripts: LEB128 numbers
// (read and written), names, the sections, and the import section's entries.

/** Reads an unsigned LEB128 at `at`: [value, next offset]. */
export function readLeb(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) return [value, at];
    shift += 7;
  }
}

/** An unsigned LEB128's bytes. */
export function writeLeb(value) {
  const out = [];
  do {
    let b = value % 128;
    value = Math.floor(value / 128);
    if (value) b |= 0x80;
    out.push(b);
  } while (value);
  return Buffer.from(out);
}

/** A name as the format writes it: its length in bytes, then its UTF-8. */
export const writeName = (s) => Buffer.concat([writeLeb(Buffer.byteLength(s)), Buffer.from(s)]);

/** The module's sections: `{id, name?, at, start, end, size}` (at: the section's first byte;
 * start: its payload's, past a custom section's name). */
export function sections(buf) {
  if (buf.readUInt32LE(0) !== 0x6d736100) throw new Error('not a wasm module');
  const out = [];
  let at = 8;
  while (at < buf.length) {
    const id = buf[at];
    const [size, start] = readLeb(buf, at + 1);
    const s = { id, at, start, end: start + size, size: start + size - at };
    if (id === 0) {
      const [len, nameAt] = readLeb(buf, start);
      s.name = buf.toString('utf8', nameAt, nameAt + len);
      s.start = nameAt + len;
    }
    out.push(s);
    at = start + size;
  }
  return out;
}

/** The entries of the import section `sec`: `{module, name, kind, desc}` (desc: the bytes of
 * the description, from its kind byte on). */
export function imports(buf, sec) {
  const limits = (p) => {
    const flags = buf[p];
    let [, q] = readLeb(buf, p + 1);
    if (flags & 1) [, q] = readLeb(buf, q);
    return q;
  };
  const text = (p) => {
    const [len, from] = readLeb(buf, p);
    return [buf.toString('utf8', from, from + len), from + len];
  };
  let [count, p] = readLeb(buf, sec.start);
  const out = [];
  for (let i = 0; i < count; i++) {
    const [module, afterModule] = text(p);
    const [name, descAt] = text(afterModule);
    const kind = buf[descAt];
    let end;
    switch (kind) {
      case 0: end = readLeb(buf, descAt + 1)[1]; break; // function: type index
      case 1: end = limits(descAt + 2); break; // table: reference type, limits
      case 2: end = limits(descAt + 1); break; // memory: limits
      case 3: end = descAt + 3; break; // global: value type, mutability
      case 4: end = readLeb(buf, descAt + 2)[1]; break; // tag: attribute, type index
      default: throw new Error(`import kind ${kind} unknown`);
    }
    out.push({ module, name, kind, desc: buf.subarray(descAt, end) });
    p = end;
  }
  if (p !== sec.end) throw new Error('the import section was not read to its end');
  return out;
}
