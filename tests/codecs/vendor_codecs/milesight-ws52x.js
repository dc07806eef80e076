// Milesight WS52x smart portable socket (smart switch / plug), written for pilotlab from
// Milesight's published uplink format: [channel id][channel type][value], little-endian.
//   0x03 0x74  voltage       uint16, 0.1 V
//   0x04 0x80  active power  uint32, W
//   0x05 0x81  power factor  uint8, %
//   0x06 0x83  energy        uint32, Wh
//   0x07 0xC9  current       uint16, mA
//   0x08 0x70  socket state  uint8, 1 open (on) / 0 close (off)
// Written with ES2015 (const, let, arrow functions, a Map, DataView) as newer vendor files are.
const CHANNELS = new Map([
  ["3:116", ["voltage", 2, (v) => v.getUint16(0, true) / 10]],
  ["4:128", ["power", 4, (v) => v.getUint32(0, true)]],
  ["5:129", ["factor", 1, (v) => v.getUint8(0)]],
  ["6:131", ["energy", 4, (v) => v.getUint32(0, true)]],
  ["7:201", ["current", 2, (v) => v.getUint16(0, true)]],
  ["8:112", ["button", 1, (v) => (v.getUint8(0) === 1 ? "open" : "close")]],
]);

function decodeUplink(input) {
  const bytes = new Uint8Array(input.bytes);
  const data = {};
  let i = 0;
  while (i < bytes.length) {
    const channel = CHANNELS.get(bytes[i] + ":" + bytes[i + 1]);
    if (channel === undefined) {
      return { errors: [`unknown channel ${bytes[i]} type ${bytes[i + 1]}`] };
    }
    const [name, size, read] = channel;
    data[name] = read(new DataView(bytes.buffer, i + 2, size));
    i += 2 + size;
  }
  return { data, warnings: [] };
}
