// A zip archive of a directory, entries stored or deflated: what Firefox needs to install an add-on
// permanently (an .xpi), and what the stores take, without a `zip` binary on the machine.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

function filesUnder(dir, prefix = '') {
  return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((d) => {
    const rel = prefix + d.name;
    return d.isDirectory() ? filesUnder(path.join(dir, d.name), `${rel}/`) : [rel];
  });
}

/** Writes `dir`'s files (recursively, paths with `/`) into the zip file `out` (`deflate`: compressed). */
export function zipDirectory(dir, out, { deflate = false } = {}) {
  const local = [];
  const central = [];
  let offset = 0;
  for (const name of filesUnder(dir)) {
    const raw = fs.readFileSync(path.join(dir, name));
    const data = deflate ? zlib.deflateRawSync(raw) : raw;
    const method = deflate ? 8 : 0;
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = zlib.crc32(raw);
    // Local header: signature, version 2.0, UTF-8 names flag, method, no time, crc, sizes, name.
    const head = Buffer.alloc(30);
    head.writeUInt32LE(0x04034b50, 0);
    head.writeUInt16LE(20, 4);
    head.writeUInt16LE(0x0800, 6);
    head.writeUInt16LE(method, 8);
    head.writeUInt32LE(0x00210000, 10); // 1980-01-01 00:00
    head.writeUInt32LE(crc, 14);
    head.writeUInt32LE(data.length, 18);
    head.writeUInt32LE(raw.length, 22);
    head.writeUInt16LE(nameBytes.length, 26);
    local.push(head, nameBytes, data);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(20, 4);
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x0800, 8);
    entry.writeUInt16LE(method, 10);
    entry.writeUInt32LE(0x00210000, 12);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(raw.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt32LE(offset, 42);
    central.push(entry, nameBytes);
    offset += head.length + nameBytes.length + data.length;
  }
  const centralBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(central.length / 2, 8);
  end.writeUInt16LE(central.length / 2, 10);
  end.writeUInt32LE(centralBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  fs.writeFileSync(out, Buffer.concat([...local, centralBytes, end]));
}
