// Milesight EM300-TH temperature and humidity sensor (environment sensor), written for pilotlab
// from Milesight's published uplink format: a sequence of [channel id][channel type][value],
// values little-endian.
//   0x01 0x75  battery      uint8, %
//   0x03 0x67  temperature  int16 LE, 0.1 °C
//   0x04 0x68  humidity     uint8, 0.5 %RH
// Written in the older TTN (v2) form, Decoder(bytes, port).
function Decoder(bytes, port) {
  var data = {};
  var i = 0;
  while (i < bytes.length) {
    var id = bytes[i++];
    var type = bytes[i++];
    if (id === 0x01 && type === 0x75) {
      data.battery = bytes[i];
      i += 1;
    } else if (id === 0x03 && type === 0x67) {
      data.temperature = int16LE(bytes, i) / 10;
      i += 2;
    } else if (id === 0x04 && type === 0x68) {
      data.humidity = bytes[i] / 2;
      i += 1;
    } else {
      throw new Error("unknown channel 0x" + id.toString(16) + " type 0x" + type.toString(16));
    }
  }
  return data;
}

function int16LE(bytes, i) {
  var value = bytes[i] | (bytes[i + 1] << 8);
  return value > 0x7fff ? value - 0x10000 : value;
}
